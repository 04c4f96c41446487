// eltwise.cu — elementwise CUDA kernels: ReLU forward/backward (the CPU's leaky-ReLU rule with
// slope 0: x > 0 ? x : 0·x, so NaN stays NaN); the backward also serves the fused conv2d+ReLU
// (keyed on its output). The conv bias + ReLU epilogue is fused into conv2d's store.
#include "cuda/runtime.cuh"

namespace cnnfast::cuda {
namespace {

__global__ void relu_forward_kernel(int64_t n, float* y, const float* x) {
  CNNFAST_GRID_STRIDE(i, n) {
    const float v = x[i];
    y[i] = v > 0.f ? v : 0.f * v;
  }
}

// dx = dy where s > 0, else 0 (s: the forward input for relu, the forward output for the mask)
__global__ void relu_backward_kernel(int64_t n, float* dx, const float* dy, const float* s) {
  CNNFAST_GRID_STRIDE(i, n) { dx[i] = s[i] > 0.f ? dy[i] : 0.f; }
}

}  // namespace

void relu_forward(int64_t n, float* y, const float* x) {
  if (n <= 0) return;
  relu_forward_kernel<<<blocks_for(n), kThreads>>>(n, y, x);
  CNNFAST_CUDA_CHECK_LAUNCH("relu_forward_kernel");
}

void relu_backward(int64_t n, float* dx, const float* dy, const float* x) {
  if (n <= 0) return;
  relu_backward_kernel<<<blocks_for(n), kThreads>>>(n, dx, dy, x);
  CNNFAST_CUDA_CHECK_LAUNCH("relu_backward_kernel");
}

}  // namespace cnnfast::cuda
