// gemm_12x32__avx512.cpp — AVX-512F microkernels: f32 12x32 (24 zmm accumulators) and f64 12x16.
// Compiled with AVX-512 flags only; chosen at run time when the CPU and OS support AVX-512F.
// Mirrors gemm_6x16__avx2.cpp: accumulators are named locals so they stay in registers.
#include <immintrin.h>

#include "cpu/kernels/gemm_ukernel.h"

namespace cnnfast {
namespace {

// The twelve rows of one k step: row I uses broadcast A[I] against the two B vectors.
#define CNNFAST_ROW(SET1, FMA, I) \
  ai = SET1((A)[I]);              \
  c##I##0 = FMA(ai, b0, c##I##0); \
  c##I##1 = FMA(ai, b1, c##I##1);
#define CNNFAST_ROWS(SET1, FMA)                                                  \
  CNNFAST_ROW(SET1, FMA, 0) CNNFAST_ROW(SET1, FMA, 1) CNNFAST_ROW(SET1, FMA, 2)   \
  CNNFAST_ROW(SET1, FMA, 3) CNNFAST_ROW(SET1, FMA, 4) CNNFAST_ROW(SET1, FMA, 5)   \
  CNNFAST_ROW(SET1, FMA, 6) CNNFAST_ROW(SET1, FMA, 7) CNNFAST_ROW(SET1, FMA, 8)   \
  CNNFAST_ROW(SET1, FMA, 9) CNNFAST_ROW(SET1, FMA, 10) CNNFAST_ROW(SET1, FMA, 11)
#define CNNFAST_STORE_ROW(STORE, I, W) \
  STORE(tile + (I) * 2 * (W), c##I##0); \
  STORE(tile + (I) * 2 * (W) + (W), c##I##1);
#define CNNFAST_STORE_ROWS(STORE, W)                                              \
  CNNFAST_STORE_ROW(STORE, 0, W) CNNFAST_STORE_ROW(STORE, 1, W)                    \
  CNNFAST_STORE_ROW(STORE, 2, W) CNNFAST_STORE_ROW(STORE, 3, W)                    \
  CNNFAST_STORE_ROW(STORE, 4, W) CNNFAST_STORE_ROW(STORE, 5, W)                    \
  CNNFAST_STORE_ROW(STORE, 6, W) CNNFAST_STORE_ROW(STORE, 7, W)                    \
  CNNFAST_STORE_ROW(STORE, 8, W) CNNFAST_STORE_ROW(STORE, 9, W)                    \
  CNNFAST_STORE_ROW(STORE, 10, W) CNNFAST_STORE_ROW(STORE, 11, W)

void ukernel_f32_12x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                       int64_t mr, int64_t nr, bool accumulate) {
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00,
         c70 = c00, c71 = c00, c80 = c00, c81 = c00, c90 = c00, c91 = c00, c100 = c00,
         c101 = c00, c110 = c00, c111 = c00;
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
    __m512 ai;
#define A a
    CNNFAST_ROWS(_mm512_set1_ps, _mm512_fmadd_ps)
#undef A
    a += 12;
    b += 32;
  }
  alignas(64) float tile[12 * 32];
  CNNFAST_STORE_ROWS(_mm512_store_ps, 16)
  if (mr == 12 && nr == 32) {
    for (int i = 0; i < 12; ++i) {
      float* ci = c + i * ldc;
      __m512 v0 = _mm512_load_ps(tile + i * 32), v1 = _mm512_load_ps(tile + i * 32 + 16);
      if (accumulate) {
        v0 = _mm512_add_ps(v0, _mm512_loadu_ps(ci));
        v1 = _mm512_add_ps(v1, _mm512_loadu_ps(ci + 16));
      }
      _mm512_storeu_ps(ci, v0);
      _mm512_storeu_ps(ci + 16, v1);
    }
    return;
  }
  store_edge_tile(tile, 32, c, ldc, mr, nr, accumulate);
}

void ukernel_f64_12x16(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                       int64_t mr, int64_t nr, bool accumulate) {
  __m512d c00 = _mm512_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
          c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00,
          c70 = c00, c71 = c00, c80 = c00, c81 = c00, c90 = c00, c91 = c00, c100 = c00,
          c101 = c00, c110 = c00, c111 = c00;
  for (int64_t p = 0; p < kc; ++p) {
    const __m512d b0 = _mm512_loadu_pd(b), b1 = _mm512_loadu_pd(b + 8);
    __m512d ai;
#define A a
    CNNFAST_ROWS(_mm512_set1_pd, _mm512_fmadd_pd)
#undef A
    a += 12;
    b += 16;
  }
  alignas(64) double tile[12 * 16];
  CNNFAST_STORE_ROWS(_mm512_store_pd, 8)
  store_edge_tile(tile, 16, c, ldc, mr, nr, accumulate);
}

#undef CNNFAST_STORE_ROWS
#undef CNNFAST_STORE_ROW
#undef CNNFAST_ROWS
#undef CNNFAST_ROW

}  // namespace

const GemmKernel<float> gemm_f32_12x32__avx512 = {"gemm_f32_12x32__avx512", 12, 32, 192, 384,
                                                  3072, ukernel_f32_12x32,
                                                  gemm_pack_rows_generic<float, 32>};
const GemmKernel<double> gemm_f64_12x16__avx512 = {"gemm_f64_12x16__avx512", 12, 16, 96, 384,
                                                   2048, ukernel_f64_12x16,
                                                   gemm_pack_rows_generic<double, 16>};

}  // namespace cnnfast
