// softmax__avx2.cpp — AVX2 softmax microkernels: softmax_impl.h's loops built for AVX2, with
// exp_poly 8 lanes at a time (scalar tail).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/kernels/softmax_ukernel.h"

namespace cnnfast {
namespace {

inline __m256 exp_vec(__m256 x) {
  const __m256 lo = _mm256_set1_ps(kExpLo), hi = _mm256_set1_ps(kExpHi);
  const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ), over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
  x = _mm256_min_ps(hi, _mm256_max_ps(lo, x));  // this order keeps NaN
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo),
                                    _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x));
  __m256 p = _mm256_set1_ps(kExpP[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpP[i]));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
  const __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(e, 23)));
  return _mm256_blendv_ps(_mm256_andnot_ps(under, y), _mm256_set1_ps(HUGE_VALF), over);
}

// y[i] = e^{x[i] − a[i·step]}; y may be x.
inline void exp_run(int64_t n, float* y, const float* x, const float* a, int64_t step) {
  const __m256 a1 = _mm256_set1_ps(a[0]);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 ai = step ? _mm256_loadu_ps(a + i) : a1;
    _mm256_storeu_ps(y + i, exp_vec(_mm256_sub_ps(_mm256_loadu_ps(x + i), ai)));
  }
  for (; i < n; ++i) y[i] = exp_poly(x[i] - a[i * step]);
}

#include "cpu/kernels/softmax_impl.h"

}  // namespace

const SoftmaxKernel<float> softmax_f32__avx2 = softmax_table<float>("softmax_f32__avx2");
const SoftmaxKernel<double> softmax_f64__avx2 = softmax_table<double>("softmax_f64__avx2");

}  // namespace cnnfast
