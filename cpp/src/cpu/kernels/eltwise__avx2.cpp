// eltwise__avx2.cpp — AVX2 elementwise microkernels: 8 floats / 4 doubles per vector, scalar tail.
#include <immintrin.h>

#include <algorithm>

#include "cpu/kernels/eltwise_ukernel.h"

namespace cnnfast {
namespace {

void leaky_relu_fwd_f32(int64_t n, float* y, const float* x, float slope) {
  const __m256 zero = _mm256_setzero_ps(), s = _mm256_set1_ps(slope);
  int64_t i = 0;
  if (slope == 0.0f) {  // relu: max(0, x) returns x when x is NaN, 0 for −inf (no 0·inf)
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_max_ps(zero, _mm256_loadu_ps(x + i)));
    for (; i < n; ++i) y[i] = 0.0f > x[i] ? 0.0f : x[i];
    return;
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 pos = _mm256_cmp_ps(v, zero, _CMP_GT_OQ);
    _mm256_storeu_ps(y + i, _mm256_blendv_ps(_mm256_mul_ps(v, s), v, pos));
  }
  for (; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
}

void leaky_relu_bwd_f32(int64_t n, float* dx, const float* dy, const float* x, float slope) {
  const __m256 zero = _mm256_setzero_ps(), s = _mm256_set1_ps(slope);
  int64_t i = 0;
  if (slope == 0.0f) {  // relu: exactly 0 where x <= 0 (no 0·inf); NaN passes dy, as torch
    for (; i + 8 <= n; i += 8) {
      const __m256 pos = _mm256_cmp_ps(_mm256_loadu_ps(x + i), zero, _CMP_NLE_UQ);
      _mm256_storeu_ps(dx + i, _mm256_and_ps(_mm256_loadu_ps(dy + i), pos));
    }
    for (; i < n; ++i) dx[i] = x[i] <= 0.0f ? 0.0f : dy[i];
    return;
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(dy + i);
    const __m256 pos = _mm256_cmp_ps(_mm256_loadu_ps(x + i), zero, _CMP_GT_OQ);
    _mm256_storeu_ps(dx + i, _mm256_blendv_ps(_mm256_mul_ps(g, s), g, pos));
  }
  for (; i < n; ++i) dx[i] = x[i] > 0.0f ? dy[i] : slope * dy[i];
}

void leaky_relu_fwd_f64(int64_t n, double* y, const double* x, double slope) {
  const __m256d zero = _mm256_setzero_pd(), s = _mm256_set1_pd(slope);
  int64_t i = 0;
  if (slope == 0.0) {  // relu: max(0, x) returns x when x is NaN, 0 for −inf (no 0·inf)
    for (; i + 4 <= n; i += 4) _mm256_storeu_pd(y + i, _mm256_max_pd(zero, _mm256_loadu_pd(x + i)));
    for (; i < n; ++i) y[i] = 0.0 > x[i] ? 0.0 : x[i];
    return;
  }
  for (; i + 4 <= n; i += 4) {
    const __m256d v = _mm256_loadu_pd(x + i);
    const __m256d pos = _mm256_cmp_pd(v, zero, _CMP_GT_OQ);
    _mm256_storeu_pd(y + i, _mm256_blendv_pd(_mm256_mul_pd(v, s), v, pos));
  }
  for (; i < n; ++i) y[i] = x[i] > 0.0 ? x[i] : slope * x[i];
}

void leaky_relu_bwd_f64(int64_t n, double* dx, const double* dy, const double* x, double slope) {
  const __m256d zero = _mm256_setzero_pd(), s = _mm256_set1_pd(slope);
  int64_t i = 0;
  if (slope == 0.0) {  // relu: exactly 0 where x <= 0 (no 0·inf); NaN passes dy, as torch
    for (; i + 4 <= n; i += 4) {
      const __m256d pos = _mm256_cmp_pd(_mm256_loadu_pd(x + i), zero, _CMP_NLE_UQ);
      _mm256_storeu_pd(dx + i, _mm256_and_pd(_mm256_loadu_pd(dy + i), pos));
    }
    for (; i < n; ++i) dx[i] = x[i] <= 0.0 ? 0.0 : dy[i];
    return;
  }
  for (; i + 4 <= n; i += 4) {
    const __m256d g = _mm256_loadu_pd(dy + i);
    const __m256d pos = _mm256_cmp_pd(_mm256_loadu_pd(x + i), zero, _CMP_GT_OQ);
    _mm256_storeu_pd(dx + i, _mm256_blendv_pd(_mm256_mul_pd(g, s), g, pos));
  }
  for (; i < n; ++i) dx[i] = x[i] > 0.0 ? dy[i] : slope * dy[i];
}

// tanh by the shared rational approximation, 8 lanes at a time (same formula as the scalar file).
inline __m256 tanh_vec(__m256 x) {
  x = _mm256_min_ps(_mm256_set1_ps(kTanhClamp), _mm256_max_ps(_mm256_set1_ps(-kTanhClamp), x));
  const __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(kTanhP[6]);
  for (int i = 5; i >= 0; --i) p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(kTanhP[i]));
  __m256 q = _mm256_set1_ps(kTanhQ[3]);
  for (int i = 2; i >= 0; --i) q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(kTanhQ[i]));
  return _mm256_div_ps(_mm256_mul_ps(x, p), q);
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
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, tanh_vec(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) y[i] = tanh_one(x[i]);
}

void sigmoid_f32(int64_t n, float* y, const float* x) {
  const __m256 half = _mm256_set1_ps(0.5f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(half, tanh_vec(_mm256_mul_ps(half, _mm256_loadu_ps(x + i))), half));
  for (; i < n; ++i) y[i] = 0.5f + 0.5f * tanh_one(0.5f * x[i]);
}

}  // namespace

const EltwiseKernel<float> eltwise_f32__avx2 = {"eltwise_f32__avx2", &leaky_relu_fwd_f32,
                                                &leaky_relu_bwd_f32, &tanh_f32, &sigmoid_f32};
const EltwiseKernel<double> eltwise_f64__avx2 = {"eltwise_f64__avx2", &leaky_relu_fwd_f64,
                                                 &leaky_relu_bwd_f64, &tanh_f64_std,
                                                 &sigmoid_f64_std};

}  // namespace cnnfast
