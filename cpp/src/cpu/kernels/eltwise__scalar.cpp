// eltwise__scalar.cpp — portable elementwise microkernels (the reference every ISA file mirrors).
#include <algorithm>
#include <cmath>

#include "cpu/kernels/eltwise_ukernel.h"

namespace cnnfast {
namespace {

template <class T>
void leaky_relu_fwd(int64_t n, T* y, const T* x, T slope) {
  if (slope == T(0)) {  // relu: no 0·(−inf) = NaN; NaN stays NaN
    for (int64_t i = 0; i < n; ++i) y[i] = T(0) > x[i] ? T(0) : x[i];
    return;
  }
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : slope * x[i];
}

template <class T>
void leaky_relu_bwd(int64_t n, T* dx, const T* dy, const T* x, T slope) {
  if (slope == T(0)) {  // relu: exactly 0 where x <= 0 (no 0·Inf); NaN passes dy, as torch
    for (int64_t i = 0; i < n; ++i) dx[i] = x[i] <= T(0) ? T(0) : dy[i];
    return;
  }
  for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : slope * dy[i];
}

inline float tanh_rational(float x) {
  x = std::min(std::max(x, -kTanhClamp), kTanhClamp);  // this order keeps NaN
  const float x2 = x * x;
  float p = kTanhP[6];
  for (int i = 5; i >= 0; --i) p = p * x2 + kTanhP[i];
  float q = kTanhQ[3];
  for (int i = 2; i >= 0; --i) q = q * x2 + kTanhQ[i];
  return x * p / q;
}

void tanh_f32(int64_t n, float* y, const float* x) {
  for (int64_t i = 0; i < n; ++i) y[i] = tanh_rational(x[i]);
}

void sigmoid_f32(int64_t n, float* y, const float* x) {
  for (int64_t i = 0; i < n; ++i) y[i] = 0.5f + 0.5f * tanh_rational(0.5f * x[i]);
}

}  // namespace

void tanh_f64_std(int64_t n, double* y, const double* x) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void sigmoid_f64_std(int64_t n, double* y, const double* x) {
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0 / (1.0 + std::exp(-x[i]));
}

const EltwiseKernel<float> eltwise_f32__scalar = {"eltwise_f32__scalar", &leaky_relu_fwd<float>,
                                                  &leaky_relu_bwd<float>, &tanh_f32, &sigmoid_f32};
const EltwiseKernel<double> eltwise_f64__scalar = {"eltwise_f64__scalar", &leaky_relu_fwd<double>,
                                                   &leaky_relu_bwd<double>, &tanh_f64_std,
                                                   &sigmoid_f64_std};

}  // namespace cnnfast
