// eltwise.cu — elementwise CUDA kernels: ReLU forward/backward (the CPU's leaky-ReLU rule with
// slope 0: x > 0 ? x : 0·x, so NaN stays NaN); the backward also serves the fused conv2d+ReLU
// (keyed on its output). The conv bias + ReLU epilogue is fused into conv2d's store; bias_add /
// bias_grad serve the ops without that epilogue (transposed convolution) and conv2d's db.
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

// y[n, c, s] += b[c] over y (N, C, S)
__global__ void bias_add_kernel(int64_t total, int64_t C, int64_t S, float* y, const float* b) {
  CNNFAST_GRID_STRIDE(i, total) { y[i] += b[(i / S) % C]; }
}

// db[c] += Σ_{n, s} dy[n, c, s]: one block per channel, summed in double.
__global__ void bias_grad_kernel(int64_t N, int64_t C, int64_t S, float* db, const float* dy) {
  __shared__ double partial[kThreads / 32];
  const int64_t c = blockIdx.x;
  double sum = 0;
  for (int64_t i = threadIdx.x; i < N * S; i += blockDim.x)
    sum += dy[((i / S) * C + c) * S + i % S];  // element i = (n, s) of channel c
  sum = block_sum<kThreads>(sum, partial);
  if (threadIdx.x == 0) db[c] += float(sum);
}

}  // namespace

void bias_add(int64_t N, int64_t C, int64_t S, float* y, const float* b) {
  if (N * C * S <= 0) return;
  bias_add_kernel<<<blocks_for(N * C * S), kThreads>>>(N * C * S, C, S, y, b);
  CNNFAST_CUDA_CHECK_LAUNCH("bias_add_kernel");
}

void bias_grad(int64_t N, int64_t C, int64_t S, float* db, const float* dy) {
  if (C <= 0 || N * S <= 0) return;
  bias_grad_kernel<<<unsigned(C), kThreads>>>(N, C, S, db, dy);
  CNNFAST_CUDA_CHECK_LAUNCH("bias_grad_kernel");
}

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
