// eltwise__avx512.cpp — AVX-512 elementwise microkernels (mirror of the AVX2 file): 16 floats /
// 8 doubles per vector, masked blend on x > 0, scalar tail.
#include <immintrin.h>

#include <algorithm>

#include "cpu/kernels/eltwise_ukernel.h"

namespace cnnfast {
namespace {

void leaky_relu_fwd_f32(int64_t n, float* y, const float* x, float slope) {
  const __m512 zero = _mm512_setzero_ps(), s = _mm512_set1_ps(slope);
  int64_t i = 0;
  if (slope == 0.0f) {  // relu: 0 where 0 > x (−inf included, no 0·inf), else x (NaN stays NaN)
    for (; i + 16 <= n; i += 16) {
      const __m512 v = _mm512_loadu_ps(x + i);
      _mm512_storeu_ps(y + i, _mm512_mask_blend_ps(_mm512_cmp_ps_mask(zero, v, _CMP_GT_OQ), v, zero));
    }
    for (; i < n; ++i) y[i] = 0.0f > x[i] ? 0.0f : x[i];
    return;
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __mmask16 pos = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
    _mm512_storeu_ps(y + i, _mm512_mask_blend_ps(pos, _mm512_mul_ps(v, s), v));
  }
  for (; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
}

void leaky_relu_bwd_f32(int64_t n, float* dx, const float* dy, const float* x, float slope) {
  const __m512 zero = _mm512_setzero_ps(), s = _mm512_set1_ps(slope);
  int64_t i = 0;
  if (slope == 0.0f) {  // relu: exactly 0 where x <= 0 (no 0·inf); NaN passes dy, as torch
    for (; i + 16 <= n; i += 16) {
      const __mmask16 pos = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), zero, _CMP_NLE_UQ);
      _mm512_storeu_ps(dx + i, _mm512_maskz_mov_ps(pos, _mm512_loadu_ps(dy + i)));
    }
    for (; i < n; ++i) dx[i] = x[i] <= 0.0f ? 0.0f : dy[i];
    return;
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 g = _mm512_loadu_ps(dy + i);
    const __mmask16 pos = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), zero, _CMP_GT_OQ);
    _mm512_storeu_ps(dx + i, _mm512_mask_blend_ps(pos, _mm512_mul_ps(g, s), g));
  }
  for (; i < n; ++i) dx[i] = x[i] > 0.0f ? dy[i] : slope * dy[i];
}

void leaky_relu_fwd_f64(int64_t n, double* y, const double* x, double slope) {
  const __m512d zero = _mm512_setzero_pd(), s = _mm512_set1_pd(slope);
  int64_t i = 0;
  if (slope == 0.0) {  // relu: 0 where 0 > x (−inf included, no 0·inf), else x (NaN stays NaN)
    for (; i + 8 <= n; i += 8) {
      const __m512d v = _mm512_loadu_pd(x + i);
      _mm512_storeu_pd(y + i, _mm512_mask_blend_pd(_mm512_cmp_pd_mask(zero, v, _CMP_GT_OQ), v, zero));
    }
    for (; i < n; ++i) y[i] = 0.0 > x[i] ? 0.0 : x[i];
    return;
  }
  for (; i + 8 <= n; i += 8) {
    const __m512d v = _mm512_loadu_pd(x + i);
    const __mmask8 pos = _mm512_cmp_pd_mask(v, zero, _CMP_GT_OQ);
    _mm512_storeu_pd(y + i, _mm512_mask_blend_pd(pos, _mm512_mul_pd(v, s), v));
  }
  for (; i < n; ++i) y[i] = x[i] > 0.0 ? x[i] : slope * x[i];
}

void leaky_relu_bwd_f64(int64_t n, double* dx, const double* dy, const double* x, double slope) {
  const __m512d zero = _mm512_setzero_pd(), s = _mm512_set1_pd(slope);
  int64_t i = 0;
  if (slope == 0.0) {  // relu: exactly 0 where x <= 0 (no 0·inf); NaN passes dy, as torch
    for (; i + 8 <= n; i += 8) {
      const __mmask8 pos = _mm512_cmp_pd_mask(_mm512_loadu_pd(x + i), zero, _CMP_NLE_UQ);
      _mm512_storeu_pd(dx + i, _mm512_maskz_mov_pd(pos, _mm512_loadu_pd(dy + i)));
    }
    for (; i < n; ++i) dx[i] = x[i] <= 0.0 ? 0.0 : dy[i];
    return;
  }
  for (; i + 8 <= n; i += 8) {
    const __m512d g = _mm512_loadu_pd(dy + i);
    const __mmask8 pos = _mm512_cmp_pd_mask(_mm512_loadu_pd(x + i), zero, _CMP_GT_OQ);
    _mm512_storeu_pd(dx + i, _mm512_mask_blend_pd(pos, _mm512_mul_pd(g, s), g));
  }
  for (; i < n; ++i) dx[i] = x[i] > 0.0 ? dy[i] : slope * dy[i];
}

// tanh by the shared rational approximation, 16 lanes at a time (same formula as the scalar file).
inline __m512 tanh_vec(__m512 x) {
  // Clamp by compare + blend (GCC 12 warns spuriously on _mm512_min_ps/_mm512_max_ps); NaN stays NaN.
  const __m512 hi = _mm512_set1_ps(kTanhClamp), lo = _mm512_set1_ps(-kTanhClamp);
  x = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ), x, hi);
  x = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), x, lo);
  const __m512 x2 = _mm512_mul_ps(x, x);
  __m512 p = _mm512_set1_ps(kTanhP[6]);
  for (int i = 5; i >= 0; --i) p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(kTanhP[i]));
  __m512 q = _mm512_set1_ps(kTanhQ[3]);
  for (int i = 2; i >= 0; --i) q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(kTanhQ[i]));
  return _mm512_div_ps(_mm512_mul_ps(x, p), q);
}

inline float tanh_one(float x) {
  x = std::min(std::max(x, -kTanhClamp), kTanhClamp);  // this order keeps NaN
  const float x2 = x * x;
  float p = kTanhP[6];
  for (int i = 5; i >= 0; --i) p = p * x2 + kTanhP[i];
  float q = kTanhQ[3];
  for (int i = 2; i >= 0; --i) q = q * x2 + kTanhQ[i];
  return x * p / q;
}

void tanh_f32(int64_t n, float* y, const float* x) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, tanh_vec(_mm512_loadu_ps(x + i)));
  for (; i < n; ++i) y[i] = tanh_one(x[i]);
}

void sigmoid_f32(int64_t n, float* y, const float* x) {
  const __m512 half = _mm512_set1_ps(0.5f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(half, tanh_vec(_mm512_mul_ps(half, _mm512_loadu_ps(x + i))), half));
  for (; i < n; ++i) y[i] = 0.5f + 0.5f * tanh_one(0.5f * x[i]);
}

}  // namespace

const EltwiseKernel<float> eltwise_f32__avx512 = {"eltwise_f32__avx512", &leaky_relu_fwd_f32,
                                                  &leaky_relu_bwd_f32, &tanh_f32, &sigmoid_f32};
const EltwiseKernel<double> eltwise_f64__avx512 = {"eltwise_f64__avx512", &leaky_relu_fwd_f64,
                                                   &leaky_relu_bwd_f64, &tanh_f64_std,
                                                   &sigmoid_f64_std};

}  // namespace cnnfast
