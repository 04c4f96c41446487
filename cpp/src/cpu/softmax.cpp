// softmax.cpp — softmax / log-softmax over the channel dim of x (N, C, S) and the fused
// softmax + cross-entropy forward/backward: loops over the dispatched softmax microkernels
// (kernels/softmax_ukernel.h). Two loop shapes:
//   S == 1 (class scores, (N, C)): one item per row; the row kernels run along its C values
//   S > 1 (per-pixel classes): items are (n, tile of P positions); a tile's C × P
//     values are read once (gather_max into the thread's scratch, or exp_sum's exponentials
//     there), worked there, and written once (affine_out / shift_out / grad_out)
// Exponentials are T (float: exp_poly, 2e-7 relative); sums, logarithms and the per-item
// losses are double.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "cnnfast/checked.h"
#include "cnnfast/nn.h"
#include "cnnfast/runtime.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"
#include "cpu/workspace.h"

namespace cnnfast {
namespace {

// Tile widths: the forward passes read each value once and write it once, and run faster on
// 256-position rows (longer runs for the prefetchers: softmax 8x21x128x128 -11 %); the backward
// ones on 64 (cross-entropy's target entries are rewritten after their tile's rows: on 256
// they had left the cache, +20 %).
constexpr int64_t kWide = kSoftmaxTile, kTile = 64;
static_assert(kTile <= kSoftmaxTile, "tiles are at most kSoftmaxTile wide");

// Calls f(n, s0, len, z) for every tile of up to P positions; z: the thread's scratch for
// `held` (C, P) tiles, P cut (to a multiple of 16 while it can) so they hold at most
// kScratchValues: 50000 classes get 16-position tiles, not a 100 MB scratch per thread.
constexpr int64_t kScratchValues = int64_t(1) << 16;
template <class T, class F>
void for_each_tile(int64_t N, int64_t C, int64_t S, int64_t P, int64_t held, F&& f) {
  const int64_t fit = kScratchValues / (held * std::max<int64_t>(C, 1));
  if (fit < P) P = fit >= 16 ? fit / 16 * 16 : std::max<int64_t>(fit, 1);
  const int64_t tiles = (S + P - 1) / P;
  for_each_item(N * tiles, get_num_threads(), [&](int64_t item, int) {
    const int64_t n = item / tiles, s0 = (item % tiles) * P;
    f(n, s0, std::min(P, S - s0), thread_scratch<T>(Scratch::aux, held * C * P));
  });
}

void check_target(int64_t t, int64_t C, int64_t ignore_index) {
  if (t != ignore_index && (t < 0 || t >= C))
    arg_error("target: class index " + std::to_string(t) + " out of range [0, " +
              std::to_string(C) + ") (and not ignore_index " + std::to_string(ignore_index) + ")");
}

}  // namespace

// log Σ_c e^{x_c} = mx + log(sum), kept as the two parts: log-softmax is formed as
// (x − mx) − log(sum), since mx + log(sum) loses the log (<= log C) to mx's rounding once |mx|
// passes about 2^52·log(sum) (tied logits 1e17). Softmax is e^{x − mx} · (1 / sum).
template <class T>
void softmax_forward(int64_t N, int64_t C, int64_t S, T* y, const T* x, bool log) {
  const SoftmaxKernel<T>& k = softmax_kernel<T>();
  if (S == 1) {
    for_each_item(N, get_num_threads(), [&](int64_t n, int) {
      const T* xn = x + n * C;
      T* yn = y + n * C;
      const T mx = k.row_max(C, xn);
      const double sum = k.row_exp_sum(C, xn, mx, log ? nullptr : yn);
      if (log)
        k.row_shift(C, yn, xn, mx, T(std::log(sum)));
      else
        k.row_affine(C, yn, T(1.0 / sum), T(0), nullptr);
    });
    return;
  }
  for_each_tile<T>(N, C, S, kWide, 1, [&](int64_t n, int64_t s0, int64_t len, T* z) {
    T mx[kWide], f[kWide];
    double sum[kWide];
    k.gather_max(C, len, x + n * C * S + s0, S, z, mx);
    k.exp_sum(C, len, z, len, mx, sum, log ? nullptr : z);
    T* yn = y + n * C * S + s0;
    if (log) {
      double ls[kWide];
      k.log_sums(len, ls, sum);
      for (int64_t j = 0; j < len; ++j) f[j] = T(ls[j]);
      k.shift_out(C, len, yn, S, z, mx, f);
    } else {
      for (int64_t j = 0; j < len; ++j) f[j] = T(1.0 / sum[j]);
      k.affine_out(C, len, yn, S, z, f, nullptr, nullptr);
    }
  });
}

// dx = y·(dy − Σ dy·y) (softmax) or dy − e^y·Σ dy (log-softmax), per position.
template <class T>
void softmax_backward(int64_t N, int64_t C, int64_t S, T* dx, const T* dy, const T* y, bool log) {
  const SoftmaxKernel<T>& k = softmax_kernel<T>();
  if (S == 1) {
    for_each_item(N, get_num_threads(), [&](int64_t n, int) {
      k.row_grad(C, dx + n * C, dy + n * C, y + n * C, log);
    });
    return;
  }
  for_each_tile<T>(N, C, S, kTile, 2, [&](int64_t n, int64_t s0, int64_t len, T* z) {
    const int64_t off = n * C * S + s0;
    k.gather_max(C, len, dy + off, S, z, nullptr);
    k.gather_max(C, len, y + off, S, z + C * len, nullptr);
    k.grad_out(C, len, dx + off, S, z, z + C * len, log);
  });
}

template <class T>
void cross_entropy_forward(int64_t N, int64_t C, int64_t S, T* loss, T* lse_out, const T* logits,
                           const int64_t* target, const T* weight, int64_t ignore_index,
                           double label_smoothing) {
  const SoftmaxKernel<T>& k = softmax_kernel<T>();
  const double eps = label_smoothing, eps_c = eps / double(C);
  // One position (its classes cs apart in z): lse = mx + ls, and its loss from (z_t − mx) and,
  // with smoothing, Σ_c w_c·(z_c − mx).
  const auto finish = [&](int64_t item, const T* z, int64_t cs, T mx, double ls) {
    const int64_t t = target[item];
    check_target(t, C, ignore_index);
    lse_out[item] = T(mx + ls);
    if (t == ignore_index) {
      loss[item] = T(0);
      return;
    }
    double smooth = 0;  // Σ_c w_c·(lse − z_c) = Σ_c w_c·(ls − (z_c − mx))
    if (eps != 0)
      for (int64_t c = 0; c < C; ++c)
        smooth += (weight ? double(weight[c]) : 1.0) * (ls - (double(z[c * cs]) - mx));
    const double wt = weight ? double(weight[t]) : 1.0;
    loss[item] = T((1 - eps) * wt * (ls - (double(z[t * cs]) - mx)) + eps_c * smooth);
  };
  if (S == 1) {
    for_each_item(N, get_num_threads(), [&](int64_t n, int) {
      const T* zn = logits + n * C;
      const T mx = k.row_max(C, zn);
      finish(n, zn, 1, mx, std::log(k.row_exp_sum(C, zn, mx, nullptr)));
    });
    return;
  }
  for_each_tile<T>(N, C, S, kWide, 1, [&](int64_t n, int64_t s0, int64_t len, T* z) {
    T mx[kWide];
    double sum[kWide], ls[kWide];
    k.gather_max(C, len, logits + n * C * S + s0, S, z, mx);
    k.exp_sum(C, len, z, len, mx, sum, nullptr);
    k.log_sums(len, ls, sum);
    for (int64_t j = 0; j < len; ++j) finish(n * S + s0 + j, z + j, len, mx[j], ls[j]);
  });
}

// ∂loss/∂z_c = (1 − ε)·w[t]·(p_c − [c = t]) + (ε/C)·(W·p_c − w[c]),  W = Σ w. The stored lse
// may have lost log Σ e^{z − max} to rounding (float, huge logits: tied 1e17 logits gave
// p = 1 each), so p_c = e^{z_c − lse} / Σ_c' e^{z_c' − lse}: exact whatever lse's error.
template <class T>
void cross_entropy_backward(int64_t N, int64_t C, int64_t S, T* dlogits, const T* item_grad,
                            const T* logits, const T* lse, const int64_t* target, const T* weight,
                            int64_t ignore_index, double label_smoothing) {
  const SoftmaxKernel<T>& k = softmax_kernel<T>();
  const double eps = label_smoothing, eps_c = eps / double(C);
  double wsum = double(C);
  if (weight) {
    wsum = 0;
    for (int64_t c = 0; c < C; ++c) wsum += weight[c];
  }
  // One position's gradient: d_c = e_c·coef − smooth·w_c − [c = t]·hit, e_c = e^{z_c − lse}.
  struct Coef {
    double coef, smooth, hit;
    int64_t t;
    bool valid;
  };
  const auto coefficients = [&](int64_t item, double esum) {
    const int64_t t = target[item];
    check_target(t, C, ignore_index);
    const bool valid = t != ignore_index;
    const double g = valid ? double(item_grad[item]) : 0.0;
    const double wt = valid ? (weight ? double(weight[t]) : 1.0) : 0.0;
    return Coef{g * ((1 - eps) * wt + eps_c * wsum) / esum, g * eps_c,
                g * (1 - eps) * wt, t, valid};
  };
  // The target's entry, from its exponential et (before the row was overwritten).
  const auto target_grad = [&](const Coef& q, double et) {
    return T(et * q.coef - q.smooth * (weight ? double(weight[q.t]) : 1.0) - q.hit);
  };
  if (S == 1) {
    for_each_item(N, get_num_threads(), [&](int64_t n, int) {
      T* d = dlogits + n * C;
      const Coef q = coefficients(n, k.row_exp_sum(C, logits + n * C, lse[n], d));  // e in d
      const double et = q.valid ? double(d[q.t]) : 0.0;
      k.row_affine(C, d, T(q.coef), T(q.smooth), weight);
      if (q.valid) d[q.t] = target_grad(q, et);
    });
    return;
  }
  for_each_tile<T>(N, C, S, kTile, 1, [&](int64_t n, int64_t s0, int64_t len, T* z) {
    const int64_t off = n * C * S + s0, item0 = n * S + s0;
    double esum[kTile];
    T coef[kTile], smooth[kTile];
    Coef q[kTile];
    k.exp_sum(C, len, logits + off, S, lse + item0, esum, z);  // z holds the e_c
    for (int64_t j = 0; j < len; ++j) {
      q[j] = coefficients(item0 + j, esum[j]);
      coef[j] = T(q[j].coef), smooth[j] = T(q[j].smooth);
    }
    k.affine_out(C, len, dlogits + off, S, z, coef, eps != 0 ? smooth : nullptr, weight);
    for (int64_t j = 0; j < len; ++j)
      if (q[j].valid)
        dlogits[off + q[j].t * S + j] = target_grad(q[j], double(z[q[j].t * len + j]));
  });
}

#define CNNFAST_INSTANTIATE(T)                                                                    \
  template void softmax_forward<T>(int64_t, int64_t, int64_t, T*, const T*, bool);                \
  template void softmax_backward<T>(int64_t, int64_t, int64_t, T*, const T*, const T*, bool);     \
  template void cross_entropy_forward<T>(int64_t, int64_t, int64_t, T*, T*, const T*,             \
                                         const int64_t*, const T*, int64_t, double);              \
  template void cross_entropy_backward<T>(int64_t, int64_t, int64_t, T*, const T*, const T*,      \
                                          const T*, const int64_t*, const T*, int64_t, double);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast
