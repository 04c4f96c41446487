// softmax_xent.cu — fused softmax + cross-entropy on CUDA, nn.h's contract: logits (N, C, S),
// items (N, S), class weights, ignore_index, label smoothing; one thread per item, log-sum-exp
// and sums in double. Bad targets are reported by the kernels and thrown on the host. Also the
// device-side reduction ('mean' / 'sum') and the per-item gradient of the reduced loss.
#include <string>

#include "cuda/runtime.cuh"

namespace cnnfast::cuda {
namespace {

CNNFAST_HD inline bool bad_target(int64_t t, int64_t C, int64_t ignore_index) {
  return t != ignore_index && (t < 0 || t >= C);
}

// ---- one item each (the kernels run these in grid-stride loops) --------------------------------
CNNFAST_HD inline void forward_one(int64_t item, int64_t C, int64_t S, float* loss,
                                   float* lse_out, const float* logits, const int64_t* target,
                                   const float* weight, const float* pixel_weight,
                                   int64_t ignore_index, double eps, long long* flag) {
  const float* z = logits + (item / S) * C * S + item % S;  // class c at z[c * S]
  double mx = -INFINITY;
  for (int64_t c = 0; c < C; ++c) mx = fmax(mx, double(z[c * S]));
  double sum = 0;
  for (int64_t c = 0; c < C; ++c) sum += exp(double(z[c * S]) - mx);
  const double ls = log(sum);  // lse = mx + ls; differences as ls − (z − mx) keep ls at any mx
  lse_out[item] = float(mx + ls);
  const int64_t t = target[item];
  if (bad_target(t, C, ignore_index)) report_error(flag, t);
  if (t == ignore_index || bad_target(t, C, ignore_index)) {
    loss[item] = 0.f;
    return;
  }
  double smooth = 0;
  if (eps != 0)
    for (int64_t c = 0; c < C; ++c)
      smooth += (weight ? double(weight[c]) : 1.0) * (ls - (double(z[c * S]) - mx));
  const double wt = weight ? double(weight[t]) : 1.0;
  double l = (1 - eps) * wt * (ls - (double(z[t * S]) - mx)) + eps / double(C) * smooth;
  if (pixel_weight) l *= double(pixel_weight[item]);
  loss[item] = float(l);
}

// ∂loss/∂z_c = g·((1 − ε)·w[t]·(p_c − [c = t]) + (ε/C)·(W·p_c − w[c])),  W = Σ w, with
// p_c = e^{z_c − lse} / Σ_c' e^{z_c' − lse}: exact even when the float lse lost log Σ e^{z − max}.
CNNFAST_HD inline void backward_one(int64_t item, int64_t C, int64_t S, float* dlogits,
                                    const float* item_grad, const float* logits, const float* lse,
                                    const int64_t* target, const float* weight,
                                    int64_t ignore_index, double eps, long long* flag) {
  const int64_t off = (item / S) * C * S + item % S;  // class c at off + c * S
  const int64_t t = target[item];
  if (bad_target(t, C, ignore_index)) {
    report_error(flag, t);
    for (int64_t c = 0; c < C; ++c) dlogits[off + c * S] = 0.f;
    return;
  }
  double wsum = double(C);
  if (weight) {
    wsum = 0;
    for (int64_t c = 0; c < C; ++c) wsum += weight[c];
  }
  const bool ignored = t == ignore_index;
  const double g = ignored ? 0.0 : double(item_grad[item]);
  const double wt = ignored ? 0.0 : (weight ? double(weight[t]) : 1.0);
  const double a = g * ((1 - eps) * wt + eps / double(C) * wsum);  // multiplies p_c
  double psum = 0;
  for (int64_t c = 0; c < C; ++c) psum += exp(double(logits[off + c * S]) - double(lse[item]));
  for (int64_t c = 0; c < C; ++c) {
    const double p = exp(double(logits[off + c * S]) - double(lse[item])) / psum;
    const double wc = weight ? double(weight[c]) : 1.0;
    double d = a * p - g * eps / double(C) * wc;
    if (c == t) d -= g * (1 - eps) * wt;
    dlogits[off + c * S] = float(d);
  }
}

__global__ void xent_forward_kernel(int64_t N, int64_t C, int64_t S, float* loss, float* lse_out,
                                    const float* logits, const int64_t* target,
                                    const float* weight, const float* pixel_weight,
                                    int64_t ignore_index, double eps, long long* flag) {
  CNNFAST_GRID_STRIDE(item, N * S) {
    forward_one(item, C, S, loss, lse_out, logits, target, weight, pixel_weight, ignore_index,
                eps, flag);
  }
}

__global__ void xent_backward_kernel(int64_t N, int64_t C, int64_t S, float* dlogits,
                                     const float* item_grad, const float* logits,
                                     const float* lse, const int64_t* target, const float* weight,
                                     int64_t ignore_index, double eps, long long* flag) {
  CNNFAST_GRID_STRIDE(item, N * S) {
    backward_one(item, C, S, dlogits, item_grad, logits, lse, target, weight, ignore_index, eps,
                 flag);
  }
}

// One block: out[0] = Σ loss (or that / the weighted count of non-ignored items, NaN if zero).
__global__ void xent_reduce_kernel(int64_t items, int64_t C, float* out, double* denom_out,
                                   const float* loss, const int64_t* target, const float* weight,
                                   int64_t ignore_index, bool mean) {
  __shared__ double partial[kThreads / 32];
  double s = 0, d = 0;
  for (int64_t i = threadIdx.x; i < items; i += kThreads) {
    if (loss) s += loss[i];
    const int64_t t = target[i];
    if (t != ignore_index && t >= 0 && t < C) d += weight ? double(weight[t]) : 1.0;
  }
  s = block_sum<kThreads>(s, partial);
  d = block_sum<kThreads>(d, partial);
  if (threadIdx.x == 0) {
    if (out) out[0] = mean ? (d != 0 ? float(s / d) : NAN) : float(s);
    if (denom_out) denom_out[0] = d;
  }
}

__global__ void xent_item_grad_kernel(int64_t items, float* item_grad, const float* grad_items,
                                      const float* grad_scalar_dev, double grad_scalar,
                                      const float* pixel_weight, const double* denom) {
  CNNFAST_GRID_STRIDE(i, items) {
    double g = grad_items ? double(grad_items[i])
                          : (grad_scalar_dev ? double(*grad_scalar_dev) : grad_scalar);
    if (denom) g /= denom[0];
    if (pixel_weight) g *= double(pixel_weight[i]);
    item_grad[i] = float(g);
  }
}

void throw_bad_target(int64_t t, int64_t C, int64_t ignore_index) {
  throw std::invalid_argument("target: class index " + std::to_string(t) + " out of range [0, " +
                              std::to_string(C) + ") (and not ignore_index " +
                              std::to_string(ignore_index) + ")");
}

void throw_if_bad_target(const ErrorFlag& bad, int64_t C, int64_t ignore_index) {
  int64_t t = 0;
  if (bad.raised(&t)) throw_bad_target(t, C, ignore_index);
}

}  // namespace

void cross_entropy_forward(int64_t N, int64_t C, int64_t S, float* loss, float* lse,
                           const float* logits, const int64_t* target, const float* weight,
                           const float* pixel_weight, int64_t ignore_index,
                           double label_smoothing) {
  if (N * S == 0) return;
  ErrorFlag bad;
  xent_forward_kernel<<<blocks_for(N * S), kThreads>>>(N, C, S, loss, lse, logits, target, weight,
                                                       pixel_weight, ignore_index,
                                                       label_smoothing, bad.ptr());
  CNNFAST_CUDA_CHECK_LAUNCH("xent_forward_kernel");
  throw_if_bad_target(bad, C, ignore_index);
}

void cross_entropy_reduce(int64_t items, int64_t C, float* out, const float* loss,
                          const int64_t* target, const float* weight, int64_t ignore_index,
                          bool mean) {
  xent_reduce_kernel<<<1, kThreads>>>(items, C, out, nullptr, loss, target, weight, ignore_index,
                                      mean);
  CNNFAST_CUDA_CHECK_LAUNCH("xent_reduce_kernel");
}

void cross_entropy_item_grad(int64_t items, int64_t C, float* item_grad, const float* grad_items,
                             const float* grad_scalar_dev, double grad_scalar,
                             const float* pixel_weight, const int64_t* target, const float* weight,
                             int64_t ignore_index, bool mean) {
  if (items == 0) return;
  Scratch<double> denom(1);
  if (mean) {
    xent_reduce_kernel<<<1, kThreads>>>(items, C, nullptr, denom.get(), nullptr, target, weight,
                                        ignore_index, true);
    CNNFAST_CUDA_CHECK_LAUNCH("xent_reduce_kernel");
  }
  xent_item_grad_kernel<<<blocks_for(items), kThreads>>>(items, item_grad, grad_items,
                                                         grad_scalar_dev, grad_scalar,
                                                         pixel_weight,
                                                         mean ? denom.get() : nullptr);
  CNNFAST_CUDA_CHECK_LAUNCH("xent_item_grad_kernel");
}

void cross_entropy_backward(int64_t N, int64_t C, int64_t S, float* dlogits,
                            const float* item_grad, const float* logits, const float* lse,
                            const int64_t* target, const float* weight, int64_t ignore_index,
                            double label_smoothing) {
  if (N * S == 0) return;
  ErrorFlag bad;
  xent_backward_kernel<<<blocks_for(N * S), kThreads>>>(N, C, S, dlogits, item_grad, logits, lse,
                                                        target, weight, ignore_index,
                                                        label_smoothing, bad.ptr());
  CNNFAST_CUDA_CHECK_LAUNCH("xent_backward_kernel");
  throw_if_bad_target(bad, C, ignore_index);
}

namespace emulate {
void cross_entropy_forward(int64_t N, int64_t C, int64_t S, float* loss, float* lse,
                           const float* logits, const int64_t* target, const float* weight,
                           const float* pixel_weight, int64_t ignore_index,
                           double label_smoothing) {
  long long flag[2] = {0, 0};
  for (int64_t item = 0; item < N * S; ++item)
    forward_one(item, C, S, loss, lse, logits, target, weight, pixel_weight, ignore_index,
                label_smoothing, flag);
  if (flag[0]) throw_bad_target(flag[1], C, ignore_index);
}
void cross_entropy_backward(int64_t N, int64_t C, int64_t S, float* dlogits,
                            const float* item_grad, const float* logits, const float* lse,
                            const int64_t* target, const float* weight, int64_t ignore_index,
                            double label_smoothing) {
  long long flag[2] = {0, 0};
  for (int64_t item = 0; item < N * S; ++item)
    backward_one(item, C, S, dlogits, item_grad, logits, lse, target, weight, ignore_index,
                 label_smoothing, flag);
  if (flag[0]) throw_bad_target(flag[1], C, ignore_index);
}
}  // namespace emulate

}  // namespace cnnfast::cuda
