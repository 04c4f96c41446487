// gemm_6x16__avx2.cpp — AVX2+FMA microkernels: f32 6x16 (12 ymm accumulators) and f64 6x8.
// Compiled with -mavx2 -mfma only; chosen at run time when the CPU supports it.
#include <immintrin.h>

#include "cpu/kernels/gemm_ukernel.h"

namespace cnnfast {
namespace {

void ukernel_f32_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                      int64_t mr, int64_t nr, bool accumulate) {
  __m256 acc[6][2];
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    for (int i = 0; i < 6; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += 6;
    b += 16;
  }
  if (mr == 6 && nr == 16) {
    for (int i = 0; i < 6; ++i) {
      float* ci = c + i * ldc;
      if (accumulate) {
        acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(ci));
        acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(ci + 8));
      }
      _mm256_storeu_ps(ci, acc[i][0]);
      _mm256_storeu_ps(ci + 8, acc[i][1]);
    }
    return;
  }
  alignas(32) float tile[6 * 16];
  for (int i = 0; i < 6; ++i) {
    _mm256_store_ps(tile + i * 16, acc[i][0]);
    _mm256_store_ps(tile + i * 16 + 8, acc[i][1]);
  }
  store_edge_tile(tile, 16, c, ldc, mr, nr, accumulate);
}

void ukernel_f64_6x8(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                     int64_t mr, int64_t nr, bool accumulate) {
  __m256d acc[6][2];
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_pd();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256d b0 = _mm256_loadu_pd(b), b1 = _mm256_loadu_pd(b + 4);
    for (int i = 0; i < 6; ++i) {
      const __m256d ai = _mm256_broadcast_sd(a + i);
      acc[i][0] = _mm256_fmadd_pd(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_pd(ai, b1, acc[i][1]);
    }
    a += 6;
    b += 8;
  }
  alignas(32) double tile[6 * 8];
  for (int i = 0; i < 6; ++i) {
    _mm256_store_pd(tile + i * 8, acc[i][0]);
    _mm256_store_pd(tile + i * 8 + 4, acc[i][1]);
  }
  store_edge_tile(tile, 8, c, ldc, mr, nr, accumulate);
}

}  // namespace

const GemmKernel<float> gemm_f32_6x16__avx2 = {"gemm_f32_6x16__avx2", 6, 16, 144, 256, 3072,
                                               ukernel_f32_6x16};
const GemmKernel<double> gemm_f64_6x8__avx2 = {"gemm_f64_6x8__avx2", 6, 8, 96, 256, 2048,
                                               ukernel_f64_6x8};

}  // namespace cnnfast
