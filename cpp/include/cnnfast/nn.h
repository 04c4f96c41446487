// nn.h — the public C++ API of the non-convolution layer ops: activations, dropout, linear,
// batch norm, softmax / cross-entropy, LRN, contrast normalization and optimizer updates.
// Layouts: "channel" ops see x as (N, C, S) with S the product of the spatial extents.
// Gradient convention: activation gradients (dx) are overwritten; parameter gradients (dw, db,
// dgamma, dbeta) are accumulated (+=), so callers zero them once per step.
#pragma once
#include <cstdint>

namespace cnnfast {

// ---- elementwise activations ------------------------------------------------------------------
// (Named apart from conv.h's fused-epilogue Activation: one name, one definition.)
enum class Elementwise { relu = 0, leaky_relu = 1, sigmoid = 2, tanh = 3 };

// y = act(x) over n elements (slope: leaky_relu's negative slope, ignored otherwise).
template <class T>
void activation_forward(Elementwise act, int64_t n, T* y, const T* x, double slope);
// dx = dy · act'(·). For relu/leaky_relu `saved` is the input x; for sigmoid/tanh it is the
// output y (their derivatives are cheapest from y).
template <class T>
void activation_backward(Elementwise act, int64_t n, T* dx, const T* dy, const T* saved,
                         double slope);

// ---- squared error (MSELoss's 'sum'/'mean' reductions) -----------------------------------------
// Σ (x − t)² over n elements (each square rounded in T, summed in double per fixed chunk, the
// chunks in order: the same result at any thread count); dx = (x − t) · scale.
template <class T>
double squared_error_sum(int64_t n, const T* x, const T* t);
template <class T>
void squared_error_grad(int64_t n, T* dx, const T* x, const T* t, T scale);

// ---- dropout mask application -----------------------------------------------------------------
// y[o, i] = x[o, i] · mask[o] · scale; x, y are (outer, inner), mask is (outer,) of 0/1 bytes.
// Elementwise dropout uses inner = 1; Dropout2d uses outer = N·C, inner = H·W. The backward is
// the same call on dy.
template <class T>
void dropout_apply(int64_t outer, int64_t inner, T* y, const T* x, const uint8_t* mask, T scale);

// ---- linear ----------------------------------------------------------------------------------
// y (N, out) = x (N, in) · w (out, in)^T + b (out,); b may be null.
template <class T>
void linear_forward(int64_t N, int64_t in, int64_t out, T* y, const T* x, const T* w, const T* b);
// dx (N, in) = dy · w (may be null); dw (out, in) += dy^T x (may be null); db += Σ_n dy (may be null).
template <class T>
void linear_backward(int64_t N, int64_t in, int64_t out, T* dx, T* dw, T* db, const T* dy,
                     const T* x, const T* w);

// ---- batch norm (x is (N, C, S)) ---------------------------------------------------------------
// Training: normalizes with the batch statistics, writes save_mean / save_invstd (C,) for the
// backward and, when running_* are non-null, updates them as PyTorch does (unbiased variance,
// r = (1 − momentum)·r + momentum·batch). Evaluation: uses running_mean / running_var.
// gamma / beta may be null (affine=False).
template <class T>
void batch_norm_forward(int64_t N, int64_t C, int64_t S, T* y, T* save_mean, T* save_invstd,
                        const T* x, const T* gamma, const T* beta, T* running_mean,
                        T* running_var, bool training, double momentum, double eps);
// dx (may be null) from the statistics the forward used (save_mean / save_invstd: batch
// statistics in training, running statistics in eval); dgamma, dbeta += (either may be null).
template <class T>
void batch_norm_backward(int64_t N, int64_t C, int64_t S, T* dx, T* dgamma, T* dbeta, const T* dy,
                         const T* x, const T* gamma, const T* save_mean, const T* save_invstd,
                         bool training);

// ---- softmax family over the channel dim (x is (N, C, S)) ----------------------------------------
template <class T>
void softmax_forward(int64_t N, int64_t C, int64_t S, T* y, const T* x, bool log);
// dx from dy and the forward output y (softmax: y·(dy − Σ dy·y); log: dy − e^y·Σ dy).
template <class T>
void softmax_backward(int64_t N, int64_t C, int64_t S, T* dx, const T* dy, const T* y, bool log);

// Fused softmax + cross-entropy, per item (n, s): with logp = log_softmax(z) over C,
//   loss = (1 − ε)·w[t]·(−logp[t]) + (ε/C)·Σ_c w[c]·(−logp[c])     (0 where t == ignore_index)
// w = class weights (null: all 1). target is (N, S) int64 in [0, C) or ignore_index (else
// invalid_argument). Writes loss (N, S) and lse (N, S) = log Σ_c e^z, kept for the backward.
template <class T>
void cross_entropy_forward(int64_t N, int64_t C, int64_t S, T* loss, T* lse, const T* logits,
                           const int64_t* target, const T* weight, int64_t ignore_index,
                           double label_smoothing);
// dlogits (N, C, S) = item_grad (N, S) · ∂loss_item/∂logits (0 for ignored items).
template <class T>
void cross_entropy_backward(int64_t N, int64_t C, int64_t S, T* dlogits, const T* item_grad,
                            const T* logits, const T* lse, const int64_t* target, const T* weight,
                            int64_t ignore_index, double label_smoothing);

// ---- local response normalization across channels (PyTorch's LocalResponseNorm) --------------
//   scale[c] = k + α/size · Σ_{c' = c − size/2}^{c + (size−1)/2} x[c']²,  y = x · scale^−β
// save_scale (N, C, S) is written for the backward.
template <class T>
void lrn_forward(int64_t N, int64_t C, int64_t S, T* y, T* save_scale, const T* x, int64_t size,
                 double alpha, double beta, double k);
template <class T>
void lrn_backward(int64_t N, int64_t C, int64_t S, T* dx, const T* dy, const T* x,
                  const T* save_scale, int64_t size, double alpha, double beta);

// ---- contrast normalization ----------------------------------------------------------------
// Global (per image over its M = C·S values): y = s·(x − μ) / max(ε, sqrt(λ + mean((x − μ)²))).
// The backward recomputes μ and σ from x (one pass; nothing to keep between the calls).
template <class T>
void global_contrast_norm_forward(int64_t N, int64_t M, T* y, const T* x, double s, double lambda,
                                  double eps);
template <class T>
void global_contrast_norm_backward(int64_t N, int64_t M, T* dx, const T* dy, const T* x, double s,
                                   double lambda, double eps);

// Local (x is (N, C, H, W)): G = Gaussian-weighted local mean — a separable window of 2r+1 `taps`
// per axis, normalized by the sum of the in-bounds taps — per channel, or of the channel mean
// when across_channels (then G(x) is one (H, W) plane per image shared by all channels):
//   v = x − G(x),  σ = sqrt(G(v²)),  y = v / max(ε, σ).
// The backward recomputes v and σ from x.
template <class T>
void local_contrast_norm_forward(int64_t N, int64_t C, int64_t H, int64_t W, T* y, const T* x,
                                 const double* taps, int64_t radius, bool across_channels,
                                 double eps);
template <class T>
void local_contrast_norm_backward(int64_t N, int64_t C, int64_t H, int64_t W, T* dx, const T* dy,
                                  const T* x, const double* taps, int64_t radius,
                                  bool across_channels, double eps);

// ---- optimizer updates (in place, PyTorch's update rules) --------------------------------------
// SGD: d = g + wd·p; with momentum: buf = first ? d : μ·buf + (1 − dampening)·d,
//      d = nesterov ? d + μ·buf : buf;  p −= lr·d.   (buf may be null when momentum == 0.)
template <class T>
void sgd_step(int64_t n, T* p, const T* g, T* buf, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool first);
// Adam / AdamW (decoupled = AdamW: p ·= 1 − lr·wd instead of g += wd·p); step t >= 1;
// max_v (may be null unless amsgrad) keeps the running maximum of v.
template <class T>
void adam_step(int64_t n, T* p, const T* g, T* m, T* v, T* max_v, int64_t t, double lr,
               double beta1, double beta2, double eps, double weight_decay, bool decoupled,
               bool amsgrad);

}  // namespace cnnfast
