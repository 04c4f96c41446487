// winograd_f2x3_rows_impl.h — the one source of the F(2x2,3x3) row transforms (contract in
// winograd_rows.h, m = 2); pasted into each *__<isa>.cpp's anonymous namespace (no includes here).
//   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  Aᵀ = [1 1 1 0; 0 1 -1 -1]

template <class T>
void wino_input_row(const T* __restrict x, int64_t ps, int64_t ld, int64_t tw, T* __restrict v,
                    int64_t ldv) {
  const T* __restrict E = x;  // even columns
  const T* __restrict O = x + ps;
  for (int64_t j = 0; j < tw; ++j) {
    T d[4][4];
    for (int r = 0; r < 4; ++r) {
      d[r][0] = E[r * ld + j];
      d[r][1] = O[r * ld + j];
      d[r][2] = E[r * ld + j + 1];
      d[r][3] = O[r * ld + j + 1];
    }
    T t[4][4];  // Bᵀ d
    for (int c = 0; c < 4; ++c) {
      t[0][c] = d[0][c] - d[2][c];
      t[1][c] = d[1][c] + d[2][c];
      t[2][c] = d[2][c] - d[1][c];
      t[3][c] = d[1][c] - d[3][c];
    }
    for (int r = 0; r < 4; ++r) {  // (Bᵀ d) B
      v[(r * 4 + 0) * ldv + j] = t[r][0] - t[r][2];
      v[(r * 4 + 1) * ldv + j] = t[r][1] + t[r][2];
      v[(r * 4 + 2) * ldv + j] = t[r][2] - t[r][1];
      v[(r * 4 + 3) * ldv + j] = t[r][1] - t[r][3];
    }
  }
}

template <class T>
void wino_output_row(const T* __restrict m, int64_t ldm, int64_t tw, T* __restrict o,
                     int64_t ldo) {
  T* __restrict o0 = o;
  T* __restrict o1 = o + ldo;
  for (int64_t j = 0; j < tw; ++j) {
    T t[2][4];  // Aᵀ m
    for (int c = 0; c < 4; ++c) {
      const T m0 = m[c * ldm + j], m1 = m[(4 + c) * ldm + j], m2 = m[(8 + c) * ldm + j],
              m3 = m[(12 + c) * ldm + j];
      t[0][c] = m0 + m1 + m2;
      t[1][c] = m1 - m2 - m3;
    }
    o0[2 * j] = t[0][0] + t[0][1] + t[0][2];  // (Aᵀ m) A
    o0[2 * j + 1] = t[0][1] - t[0][2] - t[0][3];
    o1[2 * j] = t[1][0] + t[1][1] + t[1][2];
    o1[2 * j + 1] = t[1][1] - t[1][2] - t[1][3];
  }
}

template <class T>
void wino_adjoint_output_row(const T* __restrict o, int64_t ps, int64_t ld, int64_t tw,
                             T* __restrict mm, int64_t ldm) {
  const T* __restrict E = o;  // even columns
  const T* __restrict O = o + ps;
  for (int64_t j = 0; j < tw; ++j) {
    const T g00 = E[j], g01 = O[j], g10 = E[ld + j], g11 = O[ld + j];
    T t[4][2];  // A g, A = Aᵀᵀ: rows [1 0; 1 1; 1 -1; 0 -1]
    t[0][0] = g00, t[0][1] = g01;
    t[1][0] = g00 + g10, t[1][1] = g01 + g11;
    t[2][0] = g00 - g10, t[2][1] = g01 - g11;
    t[3][0] = -g10, t[3][1] = -g11;
    for (int r = 0; r < 4; ++r) {  // (A g) Aᵀ
      mm[(r * 4 + 0) * ldm + j] = t[r][0];
      mm[(r * 4 + 1) * ldm + j] = t[r][0] + t[r][1];
      mm[(r * 4 + 2) * ldm + j] = t[r][0] - t[r][1];
      mm[(r * 4 + 3) * ldm + j] = -t[r][1];
    }
  }
}
