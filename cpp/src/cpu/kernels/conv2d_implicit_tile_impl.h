// conv2d_implicit_tile_impl.h — the plain-loop 6x16 implicit-GEMM tile and row stores (see
// conv2d_implicit_tile.h), included inside an anonymous namespace by each ISA's file so the
// compiler vectorizes it with that file's flags. The scalar twin of the AVX2 f32 kernel.

template <class T>
void implicit_tile_6x16(int64_t n, const T* const* xs, const int64_t* off, const T* b,
                        int64_t ldb, T* out, bool accumulate) {
  T acc[6][16] = {};
  for (int64_t t = 0; t < n; ++t) {
    const T* bt = b + t * ldb;
    for (int i = 0; i < 6; ++i) {
      const T a = xs[i][off[t]];
      for (int j = 0; j < 16; ++j) acc[i][j] += a * bt[j];
    }
  }
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 16; ++j) out[i * 16 + j] = (accumulate ? out[i * 16 + j] : T(0)) + acc[i][j];
}

// y[j*ldy + i] = act(tile[i*NR + j] + bias[j]) for i < mr, j < nk: one tile (MR, NR) written as
// nk channel rows of mr positions (bias may be null; relu: negatives to 0, NaN kept).
template <class T, int NR>
void store_channels_rows(int64_t mr, int64_t nk, const T* tile, const T* bias, bool relu, T* y,
                         int64_t ldy) {
  for (int64_t j = 0; j < nk; ++j) {
    T* yj = y + j * ldy;
    for (int64_t i = 0; i < mr; ++i) {
      const T v = bias ? tile[i * NR + j] + bias[j] : tile[i * NR + j];
      yj[i] = relu && v < T(0) ? T(0) : v;
    }
  }
}

// dst[c*ldd + r] = src[r*lds + c] for r < rows, c < cols (the weight gradient's dY of one image,
// (channels, positions), as its B operand (positions, channels)).
// Columns in blocks of 64, so the dst rows one block writes stay in cache across src's rows.
template <class T>
void transpose_rows(int64_t rows, int64_t cols, const T* src, int64_t lds, T* dst, int64_t ldd) {
  for (int64_t c0 = 0; c0 < cols; c0 += 64) {
    const int64_t c1 = std::min<int64_t>(c0 + 64, cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = c0; c < c1; ++c) dst[c * ldd + r] = src[r * lds + c];
  }
}

template <class T>
void interleave2_rows(int64_t nk, int64_t nq, const T* a, const T* b, int64_t lds, const T* ba,
                      const T* bb, T* y, int64_t ldy) {
  for (int64_t k = 0; k < nk; ++k) {
    T* yk = y + k * ldy;
    for (int64_t q = 0; q < nq; ++q) {
      yk[2 * q] = a[q * lds + k] + ba[k];
      yk[2 * q + 1] = b[q * lds + k] + bb[k];
    }
  }
}

template <class T>
void deinterleave2_rows(int64_t nk, int64_t nq, const T* y, int64_t ldy, T* a, T* b,
                        int64_t lds) {
  for (int64_t k = 0; k < nk; ++k) {
    const T* yk = y + k * ldy;
    for (int64_t q = 0; q < nq; ++q) {
      a[q * lds + k] = yk[2 * q];
      b[q * lds + k] = yk[2 * q + 1];
    }
  }
}
