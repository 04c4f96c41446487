// conv2d_depthwise_rows_avx2_impl.h — the 8-lane f32 depthwise row kernels (contract in
// conv2d_depthwise_rows.h). Forward: tiles of up to 4 output rows x 3 vectors (12 accumulators);
// each tap is one broadcast weight against the shifted loads of the rows it meets, so a load
// feeds one FMA and 12 independent chains hide the FMA latency. Weight gradient: up to 12 taps
// per sweep of dy, one accumulator each, two dy vectors at a time (a tap's offset is read once
// per two FMAs), one horizontal sum per tap at the end. conv2d_depthwise_rows__avx2.cpp and
// __avx512.cpp include it inside their anonymous namespace (each built with its own flags).
#pragma once
// (included after <immintrin.h>, avx2_lanes_impl.h and conv2d_depthwise_rows.h; no includes
// here)
// `#pragma GCC unroll` on the loops over template bounds keeps the accumulators in registers.

template <int MR, int NV>
void fwd_tile(const float* x, int64_t ldi, int64_t taps, const int64_t* off, const float* w,
              float* out, int64_t ldo) {
  __m256 acc[MR][NV];
  #pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();
  for (int64_t t = 0; t < taps; ++t) {
    const __m256 wv = _mm256_broadcast_ss(w + t);
    const float* xt = x + off[t];
    #pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v)
        acc[i][v] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xt + i * ldi + 8 * v), acc[i][v]);
  }
  #pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(out + i * ldo + 8 * v, acc[i][v]);
}

template <int MR>
void fwd_mr(int64_t nj, const float* x, int64_t ldi, int64_t taps, const int64_t* off,
            const float* w, float* out, int64_t ldo) {
  switch (nj / 8) {
    case 1: return fwd_tile<MR, 1>(x, ldi, taps, off, w, out, ldo);
    case 2: return fwd_tile<MR, 2>(x, ldi, taps, off, w, out, ldo);
    default: return fwd_tile<MR, 3>(x, ldi, taps, off, w, out, ldo);
  }
}

void fwd(int64_t mr, int64_t nj, const float* x, int64_t ldi, int64_t taps, const int64_t* off,
         const float* w, float* out, int64_t ldo) {
  switch (mr) {
    case 1: return fwd_mr<1>(nj, x, ldi, taps, off, w, out, ldo);
    case 2: return fwd_mr<2>(nj, x, ldi, taps, off, w, out, ldo);
    case 3: return fwd_mr<3>(nj, x, ldi, taps, off, w, out, ldo);
    default: return fwd_mr<4>(nj, x, ldi, taps, off, w, out, ldo);
  }
}

template <int NT>
void bwd_weight_tile(const int64_t* off, int64_t rows, int64_t nj, const float* dy, int64_t ldy,
                     const float* x, int64_t ldi, float* dw) {
  __m256 acc[NT];
  #pragma GCC unroll 16
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  const int64_t full = nj / 8 * 8;
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(nj - full)),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (int64_t i = 0; i < rows; ++i) {
    const float* g = dy + i * ldy;
    const float* xi = x + i * ldi;
    int64_t j = 0;
    for (; j + 16 <= full; j += 16) {
      const __m256 g0 = _mm256_loadu_ps(g + j), g1 = _mm256_loadu_ps(g + j + 8);
      #pragma GCC unroll 16
      for (int t = 0; t < NT; ++t) {
        const float* xt = xi + off[t] + j;
        acc[t] = _mm256_fmadd_ps(g0, _mm256_loadu_ps(xt), acc[t]);
        acc[t] = _mm256_fmadd_ps(g1, _mm256_loadu_ps(xt + 8), acc[t]);
      }
    }
    if (j < nj) {  // one vector left (full or masked: dy lanes past nj read as 0) ...
      const __m256 g0 = j < full ? _mm256_loadu_ps(g + j) : _mm256_maskload_ps(g + j, tail);
      #pragma GCC unroll 16
      for (int t = 0; t < NT; ++t)
        acc[t] = _mm256_fmadd_ps(g0, _mm256_loadu_ps(xi + off[t] + j), acc[t]);
      j += 8;
      if (j < nj) {  // ... or a full one and the masked tail
        const __m256 g1 = _mm256_maskload_ps(g + j, tail);
        #pragma GCC unroll 16
        for (int t = 0; t < NT; ++t)
          acc[t] = _mm256_fmadd_ps(g1, _mm256_loadu_ps(xi + off[t] + j), acc[t]);
      }
    }
  }
  #pragma GCC unroll 16
  for (int t = 0; t < NT; ++t) dw[t] += hsum8(acc[t]);
}

template <int NT>  // `n` <= NT taps as one tile of that width
void bwd_weight_n(int64_t n, const int64_t* off, int64_t rows, int64_t nj, const float* dy,
                  int64_t ldy, const float* x, int64_t ldi, float* dw) {
  if constexpr (NT >= 1) {
    if (n == NT) return bwd_weight_tile<NT>(off, rows, nj, dy, ldy, x, ldi, dw);
    return bwd_weight_n<NT - 1>(n, off, rows, nj, dy, ldy, x, ldi, dw);
  }
}

void bwd_weight(int64_t taps, const int64_t* off, int64_t rows, int64_t nj, const float* dy,
                int64_t ldy, const float* x, int64_t ldi, float* dw) {
  // Passes of even width (5x5: 9 + 8 + 8 taps, not 12 + 12 + 1).
  const int64_t passes = (taps + kDepthwiseTapsPerPass - 1) / kDepthwiseTapsPerPass;
  for (int64_t p = 0, t0 = 0; p < passes; ++p) {
    const int64_t n = (taps - t0 + (passes - p) - 1) / (passes - p);
    bwd_weight_n<static_cast<int>(kDepthwiseTapsPerPass)>(n, off + t0, rows, nj, dy, ldy, x, ldi,
                                                          dw + t0);
    t0 += n;
  }
}
