// cuda.h — host API of the optional CUDA backend (cpp/src/cuda/*.cu): float32 kernels on DEVICE
// pointers with the layouts, semantics and gradient conventions of the CPU ops (conv.h, pool.h,
// nn.h). All work goes to the legacy default stream. Every CUDA call is checked: a failure throws
// cnnfast::cuda::Error naming the call; bad arguments throw std::invalid_argument.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cnnfast/conv.h"
#include "cnnfast/conv_family.h"
#include "cnnfast/pool.h"

namespace cnnfast::cuda {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// ---- runtime (runtime.cu) ----------------------------------------------------------------------
struct DeviceInfo {
  bool found = false;       // a usable device exists (driver loaded, count >= 1)
  int count = 0, device = -1, cc_major = 0, cc_minor = 0;
  int driver_version = 0, runtime_version = 0;
  int64_t total_memory = 0;
  std::string name, reason;  // reason: why not found (empty when found)
};
DeviceInfo device_info();  // never throws; queried once, then cached

void* device_alloc(int64_t bytes);  // stream-ordered pool when supported; nullptr for 0 bytes
void device_free(void* p) noexcept;  // errors at interpreter teardown are ignored
void copy_to_device(void* dst, const void* src, int64_t bytes);
// Waits for queued kernels; throws std::invalid_argument for a raised deferred switch check
// (max_pool_backward's from_pool), as synchronize() does.
void copy_to_host(void* dst, const void* src, int64_t bytes);
void copy_on_device(void* dst, const void* src, int64_t bytes);
void fill_bytes(void* dst, int byte, int64_t bytes);
// Waits for all queued work; reports asynchronous kernel faults and deferred switch checks.
void synchronize();
// DLPack / CUDA-array-interface stream handshakes (stream: an integer handle, 1 = legacy default,
// 2 = per-thread default): make our stream wait for `stream`'s work, or `stream` wait for ours.
void wait_for_stream(intptr_t stream);
void publish_to_stream(intptr_t stream);

// ---- conv2d (conv2d_implicit_gemm.cu): implicit GEMM with shared-memory tiles ----------------
// algo: automatic / implicit — the implicit GEMM (depthwise layers: conv2d_depthwise.cu);
// winograd / winograd_f2 / winograd_f4 — Winograd F(m x m, 3x3) (conv2d_winograd.cu; 3x3 filters
// at stride 1, any padding, dilation and groups; 'winograd' picks the tile as the CPU does).
// Others (gemm, direct, ref) throw std::invalid_argument.
// y = act(conv(x, w) + b), b may be null; relu: y = v < 0 ? 0 : v.
void conv2d_forward(const Conv2dParams& p, float* y, const float* x, const float* w,
                    const float* b, bool relu, ConvAlgo algo = ConvAlgo::automatic);
void conv2d_backward_data(const Conv2dParams& p, float* dx, const float* dy, const float* w,
                          ConvAlgo algo = ConvAlgo::automatic);
// dw += dy ⋆ x, db += Σ dy (either may be null).
void conv2d_backward_weight(const Conv2dParams& p, float* dw, float* db, const float* dy,
                            const float* x, ConvAlgo algo = ConvAlgo::automatic);

// ---- conv3d (conv3d.cu): the same tiles, one GEMM per depth slice --------------------------
void conv3d_forward(const Conv3dParams& p, float* y, const float* x, const float* w,
                    const float* b, bool relu);
void conv3d_backward_data(const Conv3dParams& p, float* dx, const float* dy, const float* w);
// dw += dy ⋆ x, db += Σ dy (either may be null).
void conv3d_backward_weight(const Conv3dParams& p, float* dw, float* db, const float* dy,
                            const float* x);

// ---- elementwise (eltwise.cu) -------------------------------------------------------------------
void relu_forward(int64_t n, float* y, const float* x);                     // x > 0 ? x : 0·x
// dx = s > 0 ? dy : 0, s the forward input — or its output (the fused conv2d+ReLU's backward)
void relu_backward(int64_t n, float* dx, const float* dy, const float* s);
void bias_add(int64_t N, int64_t C, int64_t S, float* y, const float* b);  // y (N, C, S) += b[c]
void bias_grad(int64_t N, int64_t C, int64_t S, float* db, const float* dy);  // db[c] += Σ dy
void add_scaled(int64_t n, float* out, const float* a, float alpha, const float* b);  // a + α·b
void mul_grouped(int64_t n, int64_t S, float* y, const float* x, const float* m);  // x[i]·m[i/S]
// mask[g] = 1/(1-p) with probability 1-p, else 0 (0 everywhere for p >= 1); a function of
// (seed, g) only (counter-based), so the same seed gives the same mask.
void dropout_mask(int64_t n, float* mask, double p, uint64_t seed);
// *count += number of items (n, s) of logits (N, C, S) whose argmax over C (first maximum; NaN
// counts as the maximum, as numpy.argmax) equals target (N, S). count: one device int64.
void count_correct(int64_t N, int64_t C, int64_t S, int64_t* count, const float* logits,
                   const int64_t* target);

// ---- pooling (pool.cu) and max-unpooling (unpool.cu) --------------------------------------------
void max_pool_forward(const PoolParams& p, float* y, int64_t* idx, const float* x);
// Throws std::invalid_argument for an index outside the input plane (dx is then incomplete).
// from_pool: idx is what max_pool_forward wrote for these windows, unchanged since — every switch
// lies in its window by construction. The one-pass paths then check that without waiting for
// the answer: a switch found outside its window (memory written after pooling; out-of-range
// values included) makes the next synchronize() or copy_to_host(), in any thread, throw
// std::invalid_argument, and the result is wrong (only these waits report it: a consumer that
// reads the result zero-copy, via DLPack or the CUDA array interface, is not warned). Without
// from_pool the host waits for the check and reruns a general path on a miss.
void max_pool_backward(const PoolParams& p, float* dx, const float* dy, const int64_t* idx,
                       bool from_pool = false);
void avg_pool_forward(const PoolParams& p, const AvgOptions& o, float* y, const float* x);
void avg_pool_backward(const PoolParams& p, const AvgOptions& o, float* dx, const float* dy);
// Last writer in raster order wins (deterministic); bad indices throw std::invalid_argument.
// `windows` (optional): the pooling that made the switches, in = the unpooled extents, out = the
// pooled ones; a hint enabling the one-pass paths (the switches are still checked against it).
// from_pool: as max_pool_backward's, for idx made by max_pool over `windows`.
void max_unpool_forward(const UnpoolParams& p, float* y, const float* x, const int64_t* idx,
                        const PoolParams* windows = nullptr, bool from_pool = false);
void max_unpool_backward(const UnpoolParams& p, float* dx, const float* dy, const int64_t* idx,
                         const PoolParams* windows = nullptr, bool from_pool = false);

// ---- batch norm (batchnorm.cu), x is (N, C, S); same contract as nn.h -----------------------
void batch_norm_forward(int64_t N, int64_t C, int64_t S, float* y, float* save_mean,
                        float* save_invstd, const float* x, const float* gamma, const float* beta,
                        float* running_mean, float* running_var, bool training, double momentum,
                        double eps);
void batch_norm_backward(int64_t N, int64_t C, int64_t S, float* dx, float* dgamma, float* dbeta,
                         const float* dy, const float* x, const float* gamma,
                         const float* save_mean, const float* save_invstd, bool training);

// ---- softmax cross-entropy (softmax_xent.cu), logits (N, C, S), items (N, S) -----------------
// nn.h's cross_entropy_forward, then loss[item] *= pixel_weight[item] (pixel_weight may be null).
// A target outside [0, C) other than ignore_index throws std::invalid_argument.
void cross_entropy_forward(int64_t N, int64_t C, int64_t S, float* loss, float* lse,
                           const float* logits, const int64_t* target, const float* weight,
                           const float* pixel_weight, int64_t ignore_index,
                           double label_smoothing);
// out[0] = Σ loss / (mean ? Σ_{non-ignored} weight[target] (count without weight) : 1); NaN for
// a mean over no items.
void cross_entropy_reduce(int64_t items, int64_t C, float* out, const float* loss,
                          const int64_t* target, const float* weight, int64_t ignore_index,
                          bool mean);
// Per-item gradient: item_grad[i] = g_i · pixel_weight[i] / (mean ? that denominator : 1) with
// g_i = grad_items[i] if given, else *grad_scalar_dev if given, else grad_scalar.
void cross_entropy_item_grad(int64_t items, int64_t C, float* item_grad, const float* grad_items,
                             const float* grad_scalar_dev, double grad_scalar,
                             const float* pixel_weight, const int64_t* target, const float* weight,
                             int64_t ignore_index, bool mean);
void cross_entropy_backward(int64_t N, int64_t C, int64_t S, float* dlogits,
                            const float* item_grad, const float* logits, const float* lse,
                            const int64_t* target, const float* weight, int64_t ignore_index,
                            double label_smoothing);

// ---- optimizer updates (optim.cu), nn.h's rules, arithmetic in double -------------------------
void sgd_step(int64_t n, float* p, const float* g, float* buf, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov, bool first);
void adam_step(int64_t n, float* p, const float* g, float* m, float* v, float* max_v, int64_t t,
               double lr, double beta1, double beta2, double eps, double weight_decay,
               bool decoupled, bool amsgrad);

// ---- test hooks: the kernels' own index math run on the HOST over host arrays (no GPU) ---------
// The same __host__ __device__ block / element programs the kernels run: the implicit-GEMM
// tiles, thread by thread, incl. the split of the weight-gradient sum as on a GPU with
// `multiprocessors` SMs; pooling, unpooling, cross-entropy per-item and optimizer bodies. Not
// covered: the block reductions (bias gradient, batch norm, loss reduction) and the runtime.
namespace emulate {
void conv2d_forward(const Conv2dParams& p, float* y, const float* x, const float* w,
                    const float* b, bool relu, ConvAlgo algo = ConvAlgo::automatic);
void conv2d_backward_data(const Conv2dParams& p, float* dx, const float* dy, const float* w,
                          ConvAlgo algo = ConvAlgo::automatic);
void conv2d_backward_weight(const Conv2dParams& p, float* dw, const float* dy, const float* x,
                            int multiprocessors, ConvAlgo algo = ConvAlgo::automatic);
void conv3d_forward(const Conv3dParams& p, float* y, const float* x, const float* w,
                    const float* b, bool relu);
void conv3d_backward_data(const Conv3dParams& p, float* dx, const float* dy, const float* w);
void conv3d_backward_weight(const Conv3dParams& p, float* dw, const float* dy, const float* x,
                            int multiprocessors);
void max_pool_forward(const PoolParams& p, float* y, int64_t* idx, const float* x);
void max_pool_backward(const PoolParams& p, float* dx, const float* dy, const int64_t* idx);
void avg_pool_forward(const PoolParams& p, const AvgOptions& o, float* y, const float* x);
void avg_pool_backward(const PoolParams& p, const AvgOptions& o, float* dx, const float* dy);
void max_unpool_forward(const UnpoolParams& p, float* y, const float* x, const int64_t* idx,
                        const PoolParams* windows = nullptr);
void max_unpool_backward(const UnpoolParams& p, float* dx, const float* dy, const int64_t* idx,
                         const PoolParams* windows = nullptr);
// Which path the last pooling / unpooling hook above took: "fast" (pool_fast.cuh), "fallback"
// (fast, then rerun generally: a switch off its window) or "general".
const char* last_pool_path();
void set_last_pool_path(const char* path);
void cross_entropy_forward(int64_t N, int64_t C, int64_t S, float* loss, float* lse,
                           const float* logits, const int64_t* target, const float* weight,
                           const float* pixel_weight, int64_t ignore_index,
                           double label_smoothing);
void cross_entropy_backward(int64_t N, int64_t C, int64_t S, float* dlogits,
                            const float* item_grad, const float* logits, const float* lse,
                            const int64_t* target, const float* weight, int64_t ignore_index,
                            double label_smoothing);
void sgd_step(int64_t n, float* p, const float* g, float* buf, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov, bool first);
void adam_step(int64_t n, float* p, const float* g, float* m, float* v, float* max_v, int64_t t,
               double lr, double beta1, double beta2, double eps, double weight_decay,
               bool decoupled, bool amsgrad);
}  // namespace emulate

}  // namespace cnnfast::cuda
