// eltwise.cu — elementwise CUDA kernels: ReLU forward/backward (the CPU's leaky-ReLU rule with
// slope 0: x > 0 ? x : 0·x, so NaN stays NaN); the backward also serves the fused conv2d+ReLU
// (keyed on its output). The conv bias + ReLU epilogue is fused into conv2d's store; bias_add /
// bias_grad serve the ops without that epilogue (transposed convolution) and conv2d's db.
// The layer API's device path adds: out = a + alpha·b (residual sums, gradient accumulation),
// a grouped product (dropout masks), a counter-based dropout mask and the argmax-accuracy count.
#include "cuda/runtime.cuh"

namespace cnnfast::cuda {
namespace {

__global__ void relu_forward_kernel(int64_t n, float* y, const float* x) {
  CNNFAST_GRID_STRIDE(i, n) {
    const float v = x[i];
    y[i] = v > 0.f ? v : 0.f * v;
  }
}

// dx = 0 where s <= 0, else dy (NaN passes, as torch's threshold_backward) (s: the forward input
// for relu, the forward output for the mask)
__global__ void relu_backward_kernel(int64_t n, float* dx, const float* dy, const float* s) {
  CNNFAST_GRID_STRIDE(i, n) { dx[i] = s[i] <= 0.f ? 0.f : dy[i]; }
}

// y[n, c, s] += b[c] over y (N, C, S)
__global__ void bias_add_kernel(int64_t total, int64_t C, int64_t S, float* y, const float* b) {
  CNNFAST_GRID_STRIDE(i, total) { y[i] += b[(i / S) % C]; }
}

// db[c] += Σ_{n, s} dy[n, c, s]: block (c, part) sums the part-th run of `per_part` elements of
// channel c's N·S (in double, walking (n, s) without a division per element) and adds it into
// db[c] atomically — one block per channel alone left most of the GPU idle on few channels.
__global__ void bias_grad_kernel(int64_t N, int64_t C, int64_t S, int64_t per_part, float* db,
                                 const float* dy) {
  __shared__ double partial[kThreads / 32];
  const int64_t c = blockIdx.x, begin = int64_t(blockIdx.y) * per_part;
  const int64_t end = begin + per_part < N * S ? begin + per_part : N * S;
  const int64_t step = blockDim.x, dn = step / S, ds = step % S;
  int64_t j = begin + threadIdx.x, n = j / S, s = j - n * S;
  double sum = 0;
  for (; j < end; j += step) {
    sum += dy[(n * C + c) * S + s];
    n += dn, s += ds;
    if (s >= S) s -= S, ++n;
  }
  sum = block_sum<kThreads>(sum, partial);
  if (threadIdx.x == 0) atomicAdd(&db[c], float(sum));
}

// out = a + alpha·b (out may alias a or b)
__global__ void add_scaled_kernel(int64_t n, float* out, const float* a, float alpha,
                                  const float* b) {
  CNNFAST_GRID_STRIDE(i, n) { out[i] = a[i] + alpha * b[i]; }
}

// y[i] = x[i]·m[i / S] (S = 1: elementwise; S = plane size: one factor per (n, c) plane)
__global__ void mul_grouped_kernel(int64_t n, int64_t S, float* y, const float* x,
                                   const float* m) {
  CNNFAST_GRID_STRIDE(i, n) { y[i] = x[i] * m[i / S]; }
}

// splitmix64 of (seed, i): a counter-based generator, so the mask depends only on the seed and
// the element, never on the launch configuration.
__device__ inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// mask[g] = (u_g >= p) · scale with u_g uniform in [0, 1) (24 random bits)
__global__ void dropout_mask_kernel(int64_t n, float* mask, float p, float scale, uint64_t seed) {
  CNNFAST_GRID_STRIDE(g, n) {
    const uint64_t r = mix64(seed + 0x9e3779b97f4a7c15ull * uint64_t(g + 1));
    const float u = float(r >> 40) * (1.0f / 16777216.0f);
    mask[g] = u >= p ? scale : 0.f;
  }
}

// count += #{items (n, s): argmax_c logits[n, c, s] == target[n, s]}; the first maximum wins and
// a NaN counts as the maximum (numpy.argmax's rule).
__global__ void count_correct_kernel(int64_t items, int64_t C, int64_t S,
                                     unsigned long long* count, const float* logits,
                                     const int64_t* target) {
  __shared__ double partial[kThreads / 32];
  double hits = 0;
  CNNFAST_GRID_STRIDE(i, items) {
    const float* z = logits + (i / S) * C * S + i % S;  // item i = (n, s), classes strided by S
    int64_t best_c = 0;
    float best = z[0];
    for (int64_t c = 1; c < C && best == best; ++c) {
      const float v = z[c * S];
      if (v > best || v != v) {
        best = v;
        best_c = c;
      }
    }
    hits += best_c == target[i] ? 1.0 : 0.0;
  }
  hits = block_sum<kThreads>(hits, partial);
  if (threadIdx.x == 0 && hits > 0) atomicAdd(count, static_cast<unsigned long long>(hits));
}

}  // namespace

void add_scaled(int64_t n, float* out, const float* a, float alpha, const float* b) {
  if (n <= 0) return;
  add_scaled_kernel<<<blocks_for(n), kThreads>>>(n, out, a, alpha, b);
  CNNFAST_CUDA_CHECK_LAUNCH("add_scaled_kernel");
}

void mul_grouped(int64_t n, int64_t S, float* y, const float* x, const float* m) {
  if (n <= 0) return;
  mul_grouped_kernel<<<blocks_for(n), kThreads>>>(n, S, y, x, m);
  CNNFAST_CUDA_CHECK_LAUNCH("mul_grouped_kernel");
}

void dropout_mask(int64_t n, float* mask, double p, uint64_t seed) {
  if (n <= 0) return;
  const float scale = p >= 1.0 ? 0.f : float(1.0 / (1.0 - p));
  dropout_mask_kernel<<<blocks_for(n), kThreads>>>(n, mask, float(p), scale, seed);
  CNNFAST_CUDA_CHECK_LAUNCH("dropout_mask_kernel");
}

void count_correct(int64_t N, int64_t C, int64_t S, int64_t* count, const float* logits,
                   const int64_t* target) {
  if (N * S <= 0 || C <= 0) return;
  count_correct_kernel<<<blocks_for(N * S), kThreads>>>(
      N * S, C, S, reinterpret_cast<unsigned long long*>(count), logits, target);
  CNNFAST_CUDA_CHECK_LAUNCH("count_correct_kernel");
}

void bias_add(int64_t N, int64_t C, int64_t S, float* y, const float* b) {
  if (N * C * S <= 0) return;
  bias_add_kernel<<<blocks_for(N * C * S), kThreads>>>(N * C * S, C, S, y, b);
  CNNFAST_CUDA_CHECK_LAUNCH("bias_add_kernel");
}

void bias_grad(int64_t N, int64_t C, int64_t S, float* db, const float* dy) {
  if (C <= 0 || N * S <= 0) return;
  // about four blocks per multiprocessor, each over at least 8 elements per thread
  const int64_t total = N * S, want = (4 * int64_t(multiprocessors()) + C - 1) / C;
  const int64_t parts = std::max<int64_t>(
      1, std::min<int64_t>({want, (total + 8 * kThreads - 1) / (8 * kThreads), 65535}));
  const int64_t per_part = (total + parts - 1) / parts;
  bias_grad_kernel<<<dim3(unsigned(C), unsigned((total + per_part - 1) / per_part)), kThreads>>>(
      N, C, S, per_part, db, dy);
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
