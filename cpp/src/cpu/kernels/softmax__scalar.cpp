// softmax__scalar.cpp — portable softmax microkernels (softmax_impl.h's loops with exp_poly one
// value at a time): the reference every ISA file mirrors.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/kernels/softmax_ukernel.h"

namespace cnnfast {
namespace {

// y[i] = e^{x[i] − a[i·step]}; y may be x.
inline void exp_run(int64_t n, float* y, const float* x, const float* a, int64_t step) {
  for (int64_t i = 0; i < n; ++i) y[i] = exp_poly(x[i] - a[i * step]);
}

#include "cpu/kernels/softmax_impl.h"

}  // namespace

const SoftmaxKernel<float> softmax_f32__scalar = softmax_table<float>("softmax_f32__scalar");
const SoftmaxKernel<double> softmax_f64__scalar = softmax_table<double>("softmax_f64__scalar");

}  // namespace cnnfast
