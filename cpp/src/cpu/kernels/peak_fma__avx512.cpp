// peak_fma__avx512.cpp — the FP32 peak probe for AVX-512F: 12 independent zmm FMA chains.
// Mirrors peak_fma__avx2.cpp; returns the FLOPs done.
#include <immintrin.h>

#include "cpu/kernels/peak_fma.h"

namespace cnnfast {
namespace {

double peak_fma_avx512(int64_t iters, float seed) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(seed * float(i + 1));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);
  volatile float sink = out[0];
  (void)sink;
  return double(iters) * 12 * 16 * 2;
}

}  // namespace

const PeakProbe peak_fma__avx512 = {"peak_fma__avx512", peak_fma_avx512};

}  // namespace cnnfast
