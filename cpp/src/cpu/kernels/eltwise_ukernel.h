// eltwise_ukernel.h — the elementwise microkernel contract shared by every ISA file in this folder.
// One contiguous run of n elements: no threads, no allocation; the loops in cpu/ split the work.
//   leaky_relu_fwd: y[i] = x[i] > 0 ? x[i] : slope·x[i]   (slope = 0: relu, 0 > x ? 0 : x — no
//                   0·(−inf) = NaN; NaN propagates through every kernel, tanh/sigmoid too)
//   leaky_relu_bwd: dx[i] = x[i] > 0 ? dy[i] : slope·dy[i]   (slope = 0: exactly 0)
//   tanh_fwd:       y[i] = tanh(x[i]);  sigmoid_fwd: y[i] = 1 / (1 + e^−x[i]) = (1 + tanh(x/2)) / 2
// float uses one rational approximation of tanh in every ISA file (Eigen's 13/6 minimax form,
// |x| clamped to 7.905: max relative error 4e-7); double calls std::tanh / std::exp.
// (softmax's exponentials: softmax_ukernel.h.)
#pragma once
#include <cmath>
#include <cstdint>

namespace cnnfast {

template <class T>
struct EltwiseKernel {
  const char* name;
  void (*leaky_relu_fwd)(int64_t n, T* y, const T* x, T slope);
  void (*leaky_relu_bwd)(int64_t n, T* dx, const T* dy, const T* x, T slope);
  void (*tanh_fwd)(int64_t n, T* y, const T* x);
  void (*sigmoid_fwd)(int64_t n, T* y, const T* x);
};

// The float tanh approximation's coefficients: tanh(x) ≈ x·P(x²)/Q(x²) on |x| <= kTanhClamp.
constexpr float kTanhClamp = 7.90531110763549805f;
constexpr float kTanhP[7] = {4.89352455891786e-03f, 6.37261928875436e-04f, 1.48572235717979e-05f,
                             5.12229709037114e-08f, -8.60467152213735e-11f, 2.00018790482477e-13f,
                             -2.76076847742355e-16f};
constexpr float kTanhQ[4] = {4.89352518554385e-03f, 2.26843463243900e-03f, 1.18534705686654e-04f,
                             1.19825839466702e-06f};

// The double versions every ISA table shares (double is the accuracy path, not the fast one).
void tanh_f64_std(int64_t n, double* y, const double* x);
void sigmoid_f64_std(int64_t n, double* y, const double* x);

// Per-ISA kernels (defined in the eltwise_*__<isa>.cpp files of this folder).
extern const EltwiseKernel<float> eltwise_f32__scalar;
extern const EltwiseKernel<double> eltwise_f64__scalar;
extern const EltwiseKernel<float> eltwise_f32__avx2;
extern const EltwiseKernel<double> eltwise_f64__avx2;
extern const EltwiseKernel<float> eltwise_f32__avx512;
extern const EltwiseKernel<double> eltwise_f64__avx512;

}  // namespace cnnfast
