// peak_fma__avx2.cpp — the FP32 peak probe for AVX2+FMA: 12 independent ymm FMA chains (enough to
// cover FMA latency x throughput on current cores). No memory traffic; returns the FLOPs done.
#include <immintrin.h>

#include "cpu/kernels/peak_fma.h"

namespace cnnfast {
namespace {

double peak_fma_avx2(int64_t iters, float seed) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(seed * float(i + 1));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  volatile float sink = out[0];
  (void)sink;
  return double(iters) * 12 * 8 * 2;
}

}  // namespace

const PeakProbe peak_fma__avx2 = {"peak_fma__avx2", peak_fma_avx2};

}  // namespace cnnfast
