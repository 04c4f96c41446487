// softmax__avx512.cpp — AVX-512 softmax microkernels: softmax_impl.h's loops built for AVX-512,
// with exp_poly 16 lanes at a time (scalar tail: the emulated build's masked loads would read
// past the end).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/kernels/softmax_ukernel.h"

namespace cnnfast {
namespace {

inline __m512 exp_vec(__m512 x) {
  const __m512 lo = _mm512_set1_ps(kExpLo), hi = _mm512_set1_ps(kExpHi);
  const __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  const __mmask16 over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
  x = _mm512_mask_blend_ps(under | over, x, _mm512_mask_blend_ps(over, lo, hi));  // NaN stays
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo),
                                    _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x));
  __m512 p = _mm512_set1_ps(kExpP[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpP[i]));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
  const __m512 y = _mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_slli_epi32(e, 23)));
  return _mm512_mask_blend_ps(over, _mm512_maskz_mov_ps(static_cast<__mmask16>(~under), y),
                              _mm512_set1_ps(HUGE_VALF));
}

// y[i] = e^{x[i] − a[i·step]}; y may be x.
inline void exp_run(int64_t n, float* y, const float* x, const float* a, int64_t step) {
  const __m512 a1 = _mm512_set1_ps(a[0]);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 ai = step ? _mm512_loadu_ps(a + i) : a1;
    _mm512_storeu_ps(y + i, exp_vec(_mm512_sub_ps(_mm512_loadu_ps(x + i), ai)));
  }
  for (; i < n; ++i) y[i] = exp_poly(x[i] - a[i * step]);
}

#include "cpu/kernels/softmax_impl.h"

}  // namespace

const SoftmaxKernel<float> softmax_f32__avx512 = softmax_table<float>("softmax_f32__avx512");
const SoftmaxKernel<double> softmax_f64__avx512 = softmax_table<double>("softmax_f64__avx512");

}  // namespace cnnfast
