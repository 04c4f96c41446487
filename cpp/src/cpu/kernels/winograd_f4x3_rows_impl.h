// winograd_f4x3_rows_impl.h — the one source of the F(4x4,3x3) row transforms (contract in
// winograd_rows.h, m = 4, points 0, ±1, ±2, ∞); pasted into each *__<isa>.cpp's anonymous
// namespace (no includes here).
//   Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]

// Tiles go in blocks of n <= kLanes: every step is a loop over the block's lanes with a constant
// trip count, which each file's ISA flags turn into whole vectors (a loop over tiles with the 6x6
// tile in scalars did not vectorize: 72 live values).
constexpr int kLanes = 16;

// out[i][l] = (Bᵀ in)[i][l] for i < 6, l < n (in, out: rows of kLanes, row strides si, so).
template <class T, int n>
inline void wino4_bt(const T* __restrict in, int si, T* __restrict out, int so) {
  for (int l = 0; l < n; ++l) {
    const T d0 = in[l], d1 = in[si + l], d2 = in[2 * si + l], d3 = in[3 * si + l],
            d4 = in[4 * si + l], d5 = in[5 * si + l];
    const T a = d4 - T(4) * d2, b = d3 - T(4) * d1;  // rows 1, 2: a ± b
    const T c = d4 - d2, e = T(2) * (d3 - d1);       // rows 3, 4: c ± e
    out[l] = T(4) * d0 - T(5) * d2 + d4;
    out[so + l] = a + b;
    out[2 * so + l] = a - b;
    out[3 * so + l] = c + e;
    out[4 * so + l] = c - e;
    out[5 * so + l] = T(4) * d1 - T(5) * d3 + d5;
  }
}

// Tiles j .. j + n of a row (n <= kLanes).
template <class T, int n>
inline void wino4_input_block(const T* __restrict x, int64_t ps, int64_t ld, int64_t j,
                              T* __restrict v, int64_t ldv) {
  T d[6][6][kLanes], t[6][6][kLanes];
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 6; ++c) {  // column c of the tile: plane c mod 4, tile offset c / 4
      const T* src = x + (c & 3) * ps + r * ld + j + (c >> 2);
      for (int l = 0; l < n; ++l) d[r][c][l] = src[l];
    }
  for (int c = 0; c < 6; ++c) wino4_bt<T, n>(&d[0][c][0], 6 * kLanes, &t[0][c][0], 6 * kLanes);
  for (int r = 0; r < 6; ++r) wino4_bt<T, n>(&t[r][0][0], kLanes, &d[r][0][0], kLanes);
  for (int xi = 0; xi < 36; ++xi)
    for (int l = 0; l < n; ++l) v[xi * ldv + j + l] = d[xi / 6][xi % 6][l];
}

// Runs block(j, n) over tiles [0, tw) in blocks of 16, 8, 4 and 1 tiles. A row's last block may
// overlap the one before it (it recomputes and rewrites the same values), so rows of 14 or 28
// tiles (56x56, 112x112 planes) still run whole vectors.
template <class Block16, class Block8, class Block4, class Block1>
inline void wino4_blocks(int64_t tw, Block16 b16, Block8 b8, Block4 b4, Block1 b1) {
  int64_t j = 0;
  for (; j + 16 <= tw; j += 16) b16(j);
  if (j < tw && tw >= 16) return b16(tw - 16);
  for (; j + 8 <= tw; j += 8) b8(j);
  if (j < tw && tw >= 8) return b8(tw - 8);
  for (; j + 4 <= tw; j += 4) b4(j);
  if (j < tw && tw >= 4) return b4(tw - 4);
  for (; j < tw; ++j) b1(j);
}

template <class T>
void wino_input_row(const T* __restrict x, int64_t ps, int64_t ld, int64_t tw, T* __restrict v,
                    int64_t ldv) {
  wino4_blocks(
      tw, [&](int64_t j) { wino4_input_block<T, 16>(x, ps, ld, j, v, ldv); },
      [&](int64_t j) { wino4_input_block<T, 8>(x, ps, ld, j, v, ldv); },
      [&](int64_t j) { wino4_input_block<T, 4>(x, ps, ld, j, v, ldv); },
      [&](int64_t j) { wino4_input_block<T, 1>(x, ps, ld, j, v, ldv); });
}

// out[i][l] = (Aᵀ in)[i][l] for i < 4, l < n.
template <class T, int n>
inline void wino4_at(const T* __restrict in, int si, T* __restrict out, int so) {
  for (int l = 0; l < n; ++l) {
    const T m1 = in[si + l], m2 = in[2 * si + l], m3 = in[3 * si + l], m4 = in[4 * si + l];
    const T a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
    out[l] = in[l] + a + c;
    out[so + l] = b + T(2) * d;
    out[2 * so + l] = a + T(4) * c;
    out[3 * so + l] = b + T(8) * d + in[5 * si + l];
  }
}

template <class T, int n>
inline void wino4_output_block(const T* __restrict m, int64_t ldm, int64_t j, T* __restrict o,
                               int64_t ldo) {
  T mm[6][6][kLanes], t[4][6][kLanes], u[4][4][kLanes];
  for (int xi = 0; xi < 36; ++xi)
    for (int l = 0; l < n; ++l) mm[xi / 6][xi % 6][l] = m[xi * ldm + j + l];
  for (int c = 0; c < 6; ++c) wino4_at<T, n>(&mm[0][c][0], 6 * kLanes, &t[0][c][0], 6 * kLanes);
  for (int a = 0; a < 4; ++a) wino4_at<T, n>(&t[a][0][0], kLanes, &u[a][0][0], kLanes);
  for (int a = 0; a < 4; ++a)  // interleave the 4 columns of each tile into the output row
    for (int l = 0; l < n; ++l)
      for (int e = 0; e < 4; ++e) o[a * ldo + 4 * (j + l) + e] = u[a][e][l];
}

template <class T>
void wino_output_row(const T* __restrict m, int64_t ldm, int64_t tw, T* __restrict o,
                     int64_t ldo) {
  wino4_blocks(
      tw, [&](int64_t j) { wino4_output_block<T, 16>(m, ldm, j, o, ldo); },
      [&](int64_t j) { wino4_output_block<T, 8>(m, ldm, j, o, ldo); },
      [&](int64_t j) { wino4_output_block<T, 4>(m, ldm, j, o, ldo); },
      [&](int64_t j) { wino4_output_block<T, 1>(m, ldm, j, o, ldo); });
}

// out[i][l] = (A in)[i][l] for i < 6, l < n: the transpose of wino4_at.
template <class T, int n>
inline void wino4_a(const T* __restrict in, int si, T* __restrict out, int so) {
  for (int l = 0; l < n; ++l) {
    const T d0 = in[l], d1 = in[si + l], d2 = in[2 * si + l], d3 = in[3 * si + l];
    const T e = d0 + d2, f = d1 + d3, g = d0 + T(4) * d2, h = T(2) * d1 + T(8) * d3;
    out[l] = d0;
    out[so + l] = e + f;
    out[2 * so + l] = e - f;
    out[3 * so + l] = g + h;
    out[4 * so + l] = g - h;
    out[5 * so + l] = d3;
  }
}

template <class T, int n>
inline void wino4_adjoint_output_block(const T* __restrict o, int64_t ps, int64_t ld, int64_t j,
                                       T* __restrict mm, int64_t ldm) {
  T g[4][4][kLanes], t[6][4][kLanes], u[6][6][kLanes];
  for (int a = 0; a < 4; ++a)
    for (int e = 0; e < 4; ++e)  // column e of the tile: plane e
      for (int l = 0; l < n; ++l) g[a][e][l] = o[e * ps + a * ld + j + l];
  for (int e = 0; e < 4; ++e) wino4_a<T, n>(&g[0][e][0], 4 * kLanes, &t[0][e][0], 4 * kLanes);
  for (int r = 0; r < 6; ++r) wino4_a<T, n>(&t[r][0][0], kLanes, &u[r][0][0], kLanes);
  for (int xi = 0; xi < 36; ++xi)
    for (int l = 0; l < n; ++l) mm[xi * ldm + j + l] = u[xi / 6][xi % 6][l];
}

template <class T>
void wino_adjoint_output_row(const T* __restrict o, int64_t ps, int64_t ld, int64_t tw,
                             T* __restrict mm, int64_t ldm) {
  wino4_blocks(
      tw, [&](int64_t j) { wino4_adjoint_output_block<T, 16>(o, ps, ld, j, mm, ldm); },
      [&](int64_t j) { wino4_adjoint_output_block<T, 8>(o, ps, ld, j, mm, ldm); },
      [&](int64_t j) { wino4_adjoint_output_block<T, 4>(o, ps, ld, j, mm, ldm); },
      [&](int64_t j) { wino4_adjoint_output_block<T, 1>(o, ps, ld, j, mm, ldm); });
}
