// gemm_12x32__avx512.cpp — AVX-512F microkernels: f32 12x32 (24 zmm accumulators) and f64 12x16.
// Compiled with AVX-512 flags only; chosen at run time when the CPU and OS support AVX-512F.
#include <immintrin.h>

#include "cpu/kernels/gemm_ukernel.h"

namespace cnnfast {
namespace {

void ukernel_f32_12x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                       int64_t mr, int64_t nr, bool accumulate) {
  __m512 acc[12][2];
  for (int i = 0; i < 12; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
    for (int i = 0; i < 12; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += 12;
    b += 32;
  }
  if (mr == 12 && nr == 32) {
    for (int i = 0; i < 12; ++i) {
      float* ci = c + i * ldc;
      if (accumulate) {
        acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_loadu_ps(ci));
        acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_loadu_ps(ci + 16));
      }
      _mm512_storeu_ps(ci, acc[i][0]);
      _mm512_storeu_ps(ci + 16, acc[i][1]);
    }
    return;
  }
  alignas(64) float tile[12 * 32];
  for (int i = 0; i < 12; ++i) {
    _mm512_store_ps(tile + i * 32, acc[i][0]);
    _mm512_store_ps(tile + i * 32 + 16, acc[i][1]);
  }
  store_edge_tile(tile, 32, c, ldc, mr, nr, accumulate);
}

void ukernel_f64_12x16(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                       int64_t mr, int64_t nr, bool accumulate) {
  __m512d acc[12][2];
  for (int i = 0; i < 12; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_pd();
  for (int64_t p = 0; p < kc; ++p) {
    const __m512d b0 = _mm512_loadu_pd(b), b1 = _mm512_loadu_pd(b + 8);
    for (int i = 0; i < 12; ++i) {
      const __m512d ai = _mm512_set1_pd(a[i]);
      acc[i][0] = _mm512_fmadd_pd(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_pd(ai, b1, acc[i][1]);
    }
    a += 12;
    b += 16;
  }
  alignas(64) double tile[12 * 16];
  for (int i = 0; i < 12; ++i) {
    _mm512_store_pd(tile + i * 16, acc[i][0]);
    _mm512_store_pd(tile + i * 16 + 8, acc[i][1]);
  }
  store_edge_tile(tile, 16, c, ldc, mr, nr, accumulate);
}

}  // namespace

const GemmKernel<float> gemm_f32_12x32__avx512 = {"gemm_f32_12x32__avx512", 12, 32, 192, 384,
                                                  3072, ukernel_f32_12x32};
const GemmKernel<double> gemm_f64_12x16__avx512 = {"gemm_f64_12x16__avx512", 12, 16, 96, 384,
                                                   2048, ukernel_f64_12x16};

}  // namespace cnnfast
