// eltwise__scalar.cpp — portable elementwise microkernels (the reference every ISA file mirrors).
#include "cpu/kernels/eltwise_ukernel.h"

namespace cnnfast {
namespace {

template <class T>
void leaky_relu_fwd(int64_t n, T* y, const T* x, T slope) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : slope * x[i];
}

template <class T>
void leaky_relu_bwd(int64_t n, T* dx, const T* dy, const T* x, T slope) {
  for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : slope * dy[i];
}

}  // namespace

const EltwiseKernel<float> eltwise_f32__scalar = {"eltwise_f32__scalar", &leaky_relu_fwd<float>,
                                                  &leaky_relu_bwd<float>};
const EltwiseKernel<double> eltwise_f64__scalar = {"eltwise_f64__scalar", &leaky_relu_fwd<double>,
                                                   &leaky_relu_bwd<double>};

}  // namespace cnnfast
