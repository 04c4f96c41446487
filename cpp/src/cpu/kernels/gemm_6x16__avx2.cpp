// gemm_6x16__avx2.cpp — AVX2+FMA microkernels: f32 6x16 (12 ymm accumulators) and f64 6x8.
// Compiled with -mavx2 -mfma only; chosen at run time when the CPU supports it. Accumulators are
// named locals (never an array whose address escapes) so they stay in registers across the k loop.
#include <immintrin.h>

#include "cpu/kernels/gemm_ukernel.h"

namespace cnnfast {
namespace {

// One k step of the f32 tile: two B vectors, six broadcasts of A, twelve FMAs.
#define CNNFAST_F32_STEP(A, B)                                               \
  do {                                                                       \
    const __m256 b0 = _mm256_loadu_ps(B), b1 = _mm256_loadu_ps((B) + 8);    \
    __m256 ai = _mm256_broadcast_ss((A) + 0);                                \
    c00 = _mm256_fmadd_ps(ai, b0, c00); c01 = _mm256_fmadd_ps(ai, b1, c01); \
    ai = _mm256_broadcast_ss((A) + 1);                                       \
    c10 = _mm256_fmadd_ps(ai, b0, c10); c11 = _mm256_fmadd_ps(ai, b1, c11); \
    ai = _mm256_broadcast_ss((A) + 2);                                       \
    c20 = _mm256_fmadd_ps(ai, b0, c20); c21 = _mm256_fmadd_ps(ai, b1, c21); \
    ai = _mm256_broadcast_ss((A) + 3);                                       \
    c30 = _mm256_fmadd_ps(ai, b0, c30); c31 = _mm256_fmadd_ps(ai, b1, c31); \
    ai = _mm256_broadcast_ss((A) + 4);                                       \
    c40 = _mm256_fmadd_ps(ai, b0, c40); c41 = _mm256_fmadd_ps(ai, b1, c41); \
    ai = _mm256_broadcast_ss((A) + 5);                                       \
    c50 = _mm256_fmadd_ps(ai, b0, c50); c51 = _mm256_fmadd_ps(ai, b1, c51); \
  } while (0)

void ukernel_f32_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                      int64_t mr, int64_t nr, bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  int64_t p = 0;
  for (; p + 4 <= kc; p += 4) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 256), _MM_HINT_T0);
    CNNFAST_F32_STEP(a, b);
    CNNFAST_F32_STEP(a + 6, b + 16);
    CNNFAST_F32_STEP(a + 12, b + 32);
    CNNFAST_F32_STEP(a + 18, b + 48);
    a += 24;
    b += 64;
  }
  for (; p < kc; ++p) {
    CNNFAST_F32_STEP(a, b);
    a += 6;
    b += 16;
  }
  if (mr == 6 && nr == 16) {
    const __m256 rows[6][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                               {c30, c31}, {c40, c41}, {c50, c51}};
    for (int i = 0; i < 6; ++i) {
      float* ci = c + i * ldc;
      __m256 v0 = rows[i][0], v1 = rows[i][1];
      if (accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(ci));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(ci + 8));
      }
      _mm256_storeu_ps(ci, v0);
      _mm256_storeu_ps(ci + 8, v1);
    }
    return;
  }
  alignas(32) float tile[6 * 16];
  _mm256_store_ps(tile + 0, c00);  _mm256_store_ps(tile + 8, c01);
  _mm256_store_ps(tile + 16, c10); _mm256_store_ps(tile + 24, c11);
  _mm256_store_ps(tile + 32, c20); _mm256_store_ps(tile + 40, c21);
  _mm256_store_ps(tile + 48, c30); _mm256_store_ps(tile + 56, c31);
  _mm256_store_ps(tile + 64, c40); _mm256_store_ps(tile + 72, c41);
  _mm256_store_ps(tile + 80, c50); _mm256_store_ps(tile + 88, c51);
  store_edge_tile(tile, 16, c, ldc, mr, nr, accumulate);
}
#undef CNNFAST_F32_STEP

#define CNNFAST_F64_STEP(A, B)                                               \
  do {                                                                       \
    const __m256d b0 = _mm256_loadu_pd(B), b1 = _mm256_loadu_pd((B) + 4);   \
    __m256d ai = _mm256_broadcast_sd((A) + 0);                               \
    c00 = _mm256_fmadd_pd(ai, b0, c00); c01 = _mm256_fmadd_pd(ai, b1, c01); \
    ai = _mm256_broadcast_sd((A) + 1);                                       \
    c10 = _mm256_fmadd_pd(ai, b0, c10); c11 = _mm256_fmadd_pd(ai, b1, c11); \
    ai = _mm256_broadcast_sd((A) + 2);                                       \
    c20 = _mm256_fmadd_pd(ai, b0, c20); c21 = _mm256_fmadd_pd(ai, b1, c21); \
    ai = _mm256_broadcast_sd((A) + 3);                                       \
    c30 = _mm256_fmadd_pd(ai, b0, c30); c31 = _mm256_fmadd_pd(ai, b1, c31); \
    ai = _mm256_broadcast_sd((A) + 4);                                       \
    c40 = _mm256_fmadd_pd(ai, b0, c40); c41 = _mm256_fmadd_pd(ai, b1, c41); \
    ai = _mm256_broadcast_sd((A) + 5);                                       \
    c50 = _mm256_fmadd_pd(ai, b0, c50); c51 = _mm256_fmadd_pd(ai, b1, c51); \
  } while (0)

void ukernel_f64_6x8(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                     int64_t mr, int64_t nr, bool accumulate) {
  __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
          c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t p = 0; p < kc; ++p) {
    CNNFAST_F64_STEP(a, b);
    a += 6;
    b += 8;
  }
  alignas(32) double tile[6 * 8];
  _mm256_store_pd(tile + 0, c00);  _mm256_store_pd(tile + 4, c01);
  _mm256_store_pd(tile + 8, c10);  _mm256_store_pd(tile + 12, c11);
  _mm256_store_pd(tile + 16, c20); _mm256_store_pd(tile + 20, c21);
  _mm256_store_pd(tile + 24, c30); _mm256_store_pd(tile + 28, c31);
  _mm256_store_pd(tile + 32, c40); _mm256_store_pd(tile + 36, c41);
  _mm256_store_pd(tile + 40, c50); _mm256_store_pd(tile + 44, c51);
  store_edge_tile(tile, 8, c, ldc, mr, nr, accumulate);
}
#undef CNNFAST_F64_STEP

}  // namespace

const GemmKernel<float> gemm_f32_6x16__avx2 = {"gemm_f32_6x16__avx2", 6, 16, 144, 256, 3072,
                                               ukernel_f32_6x16};
const GemmKernel<double> gemm_f64_6x8__avx2 = {"gemm_f64_6x8__avx2", 6, 8, 96, 256, 2048,
                                               ukernel_f64_6x8};

}  // namespace cnnfast
