// eltwise_ukernel.h — the elementwise microkernel contract shared by every ISA file in this folder.
// One contiguous run of n elements: no threads, no allocation; the loops in cpu/ split the work.
//   leaky_relu_fwd: y[i] = x[i] > 0 ? x[i] : slope·x[i]            (relu is slope = 0)
//   leaky_relu_bwd: dx[i] = x[i] > 0 ? dy[i] : slope·dy[i]
#pragma once
#include <cstdint>

namespace cnnfast {

template <class T>
struct EltwiseKernel {
  const char* name;
  void (*leaky_relu_fwd)(int64_t n, T* y, const T* x, T slope);
  void (*leaky_relu_bwd)(int64_t n, T* dx, const T* dy, const T* x, T slope);
};

// Per-ISA kernels (defined in the eltwise_*__<isa>.cpp files of this folder).
extern const EltwiseKernel<float> eltwise_f32__scalar;
extern const EltwiseKernel<double> eltwise_f64__scalar;
extern const EltwiseKernel<float> eltwise_f32__avx2;
extern const EltwiseKernel<double> eltwise_f64__avx2;
extern const EltwiseKernel<float> eltwise_f32__avx512;
extern const EltwiseKernel<double> eltwise_f64__avx512;

}  // namespace cnnfast
