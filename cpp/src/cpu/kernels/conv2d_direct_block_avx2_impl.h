// conv2d_direct_block_avx2_impl.h — the 8-lane f32 direct-block kernels (contract in
// conv2d_direct_block.h): forward tiles of up to 3 channels x 4 vectors or 6 channels x 2 vectors
// (12 accumulators, each tap one broadcast weight per channel against the shifted loads of the
// padded row); weight
// gradient 2 channels x S taps (up to 12 accumulators) over every row of the image, one
// horizontal sum per dW entry at the end. conv2d_direct_block__avx2.cpp and __avx512.cpp include
// it inside their anonymous namespace (internal linkage, each built with its own flags).
#pragma once
// (included after <immintrin.h>, avx2_lanes_impl.h and conv2d_direct_block.h; no includes
// here)
// The `#pragma GCC unroll` on every loop over the template bounds unrolls them before GCC's
// scalar replacement runs; without it the accumulator arrays stayed in memory (a store after
// every FMA: 27 % of peak).

template <int NK, int NV>
void fwd_tile(const float* x, int64_t ldc, int64_t ldr, int64_t C, int64_t R, int64_t S,
              const float* w, int64_t ldk, int64_t ldwc, float* out, int64_t ldo) {
  __m256 acc[NK][NV];
  #pragma GCC unroll 16
  for (int k = 0; k < NK; ++k)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[k][v] = _mm256_setzero_ps();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t r = 0; r < R; ++r) {
      const float* xr = x + c * ldc + r * ldr;
      const float* wr = w + c * ldwc + r * S;
      for (int64_t s = 0; s < S; ++s) {
        __m256 xv[NV];
        #pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) xv[v] = _mm256_loadu_ps(xr + s + 8 * v);
        #pragma GCC unroll 16
        for (int k = 0; k < NK; ++k) {
          const __m256 wv = _mm256_broadcast_ss(wr + k * ldk + s);
          #pragma GCC unroll 16
          for (int v = 0; v < NV; ++v) acc[k][v] = _mm256_fmadd_ps(wv, xv[v], acc[k][v]);
        }
      }
    }
  #pragma GCC unroll 16
  for (int k = 0; k < NK; ++k)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(out + k * ldo + 8 * v, acc[k][v]);
}

template <int NK>
void fwd_nk(int64_t nj, const float* x, int64_t ldc, int64_t ldr, int64_t C, int64_t R,
            int64_t S, const float* w, int64_t ldk, int64_t ldwc, float* out, int64_t ldo) {
  switch (nj / 8) {
    case 1: return fwd_tile<NK, 1>(x, ldc, ldr, C, R, S, w, ldk, ldwc, out, ldo);
    case 2: return fwd_tile<NK, 2>(x, ldc, ldr, C, R, S, w, ldk, ldwc, out, ldo);
    case 3:
      if constexpr (NK <= 3) return fwd_tile<NK, 3>(x, ldc, ldr, C, R, S, w, ldk, ldwc, out, ldo);
      break;
    default:
      if constexpr (NK <= 3) return fwd_tile<NK, 4>(x, ldc, ldr, C, R, S, w, ldk, ldwc, out, ldo);
      break;
  }
}

void fwd(int64_t nk, int64_t nj, const float* x, int64_t ldc, int64_t ldr, int64_t C, int64_t R,
         int64_t S, const float* w, int64_t ldk, int64_t ldwc, float* out, int64_t ldo) {
  switch (nk) {  // nk > 3 only with nj <= 16 (the contract)
    case 1: return fwd_nk<1>(nj, x, ldc, ldr, C, R, S, w, ldk, ldwc, out, ldo);
    case 2: return fwd_nk<2>(nj, x, ldc, ldr, C, R, S, w, ldk, ldwc, out, ldo);
    case 3: return fwd_nk<3>(nj, x, ldc, ldr, C, R, S, w, ldk, ldwc, out, ldo);
    case 4: return fwd_nk<4>(nj, x, ldc, ldr, C, R, S, w, ldk, ldwc, out, ldo);
    case 5: return fwd_nk<5>(nj, x, ldc, ldr, C, R, S, w, ldk, ldwc, out, ldo);
    default: return fwd_nk<6>(nj, x, ldc, ldr, C, R, S, w, ldk, ldwc, out, ldo);
  }
}

template <int NK, int S>
void bwd_weight_tile(int64_t rows, int64_t nj, const float* dy, int64_t ldk, int64_t ldy,
                     const float* x, int64_t ldr, float* dw, int64_t ldw) {
  __m256 acc[NK][S];
  #pragma GCC unroll 16
  for (int k = 0; k < NK; ++k)
    #pragma GCC unroll 16
    for (int s = 0; s < S; ++s) acc[k][s] = _mm256_setzero_ps();
  const int64_t full = nj / 8 * 8;
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(nj - full)),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  auto step = [&](const float* g, const float* xr, int64_t j, bool masked) {
    __m256 gv[NK];
    #pragma GCC unroll 16
    for (int k = 0; k < NK; ++k)
      gv[k] = masked ? _mm256_maskload_ps(g + k * ldk + j, tail) : _mm256_loadu_ps(g + k * ldk + j);
    #pragma GCC unroll 16
    for (int s = 0; s < S; ++s) {
      const __m256 xv = _mm256_loadu_ps(xr + j + s);  // finite zero padding past the row
      #pragma GCC unroll 16
      for (int k = 0; k < NK; ++k) acc[k][s] = _mm256_fmadd_ps(gv[k], xv, acc[k][s]);
    }
  };
  for (int64_t i = 0; i < rows; ++i) {
    const float* g = dy + i * ldy;
    const float* xr = x + i * ldr;
    for (int64_t j = 0; j < full; j += 8) step(g, xr, j, false);
    if (full < nj) step(g, xr, full, true);  // dy lanes past nj read as 0
  }
  #pragma GCC unroll 16
  for (int k = 0; k < NK; ++k)
    #pragma GCC unroll 16
    for (int s = 0; s < S; ++s) dw[k * ldw + s] += hsum8(acc[k][s]);
}

template <int NK>
void bwd_weight_nk(int64_t rows, int64_t nj, const float* dy, int64_t ldk, int64_t ldy,
                   const float* x, int64_t ldr, int64_t S, float* dw, int64_t ldw) {
  switch (S) {
    case 1: return bwd_weight_tile<NK, 1>(rows, nj, dy, ldk, ldy, x, ldr, dw, ldw);
    case 2: return bwd_weight_tile<NK, 2>(rows, nj, dy, ldk, ldy, x, ldr, dw, ldw);
    case 3: return bwd_weight_tile<NK, 3>(rows, nj, dy, ldk, ldy, x, ldr, dw, ldw);
    case 4: return bwd_weight_tile<NK, 4>(rows, nj, dy, ldk, ldy, x, ldr, dw, ldw);
    case 5: return bwd_weight_tile<NK, 5>(rows, nj, dy, ldk, ldy, x, ldr, dw, ldw);
    case 6: return bwd_weight_tile<NK, 6>(rows, nj, dy, ldk, ldy, x, ldr, dw, ldw);
    default:  // wider filters: the portable loop (the loops only pick this path for S <= 6)
      return direct_block_bwd_weight_generic<float>(NK, rows, nj, dy, ldk, ldy, x, ldr, S, dw,
                                                    ldw);
  }
}

void bwd_weight(int64_t nk, int64_t rows, int64_t nj, const float* dy, int64_t ldk, int64_t ldy,
                const float* x, int64_t ldr, int64_t S, float* dw, int64_t ldw) {
  if (nk == 1) return bwd_weight_nk<1>(rows, nj, dy, ldk, ldy, x, ldr, S, dw, ldw);
  return bwd_weight_nk<2>(rows, nj, dy, ldk, ldy, x, ldr, S, dw, ldw);
}
