// softmax.cpp — softmax / log-softmax over the channel dim of x (N, C, S) and the fused
// softmax + cross-entropy forward/backward. Work items are (n, block of kBlock positions), split
// over threads; the C values of one position are S apart, so each block walks c outermost and
// keeps its kBlock running maxima / sums in registers-sized local arrays (vectorizes along s).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "cnnfast/checked.h"
#include "cnnfast/nn.h"
#include "cnnfast/runtime.h"
#include "cpu/parallel.h"

namespace cnnfast {
namespace {

constexpr int64_t kBlock = 64;

// Calls f(n, s0, len) for every block of positions.
template <class F>
void for_each_block(int64_t N, int64_t S, F&& f) {
  const int64_t blocks = (S + kBlock - 1) / kBlock;
  for_each_item(N * blocks, get_num_threads(), [&](int64_t item, int) {
    const int64_t n = item / blocks, s0 = (item % blocks) * kBlock;
    f(n, s0, std::min(kBlock, S - s0));
  });
}

// log Σ_c e^{z[c, s0 + j]} = mx[j] + ls[j] for the block, kept as the two parts (z points at
// (n, 0, 0)): results are formed as (z − mx) − ls, since mx + ls loses ls (≤ log C) to mx's
// rounding once |mx| passes about 2^52·ls (softmax of tied logits 1e17 summed to 2).
template <class T>
void block_logsumexp(int64_t C, int64_t S, const T* z, int64_t s0, int64_t len, double* mx,
                     double* ls) {
  for (int64_t j = 0; j < len; ++j) mx[j] = -std::numeric_limits<double>::infinity(), ls[j] = 0;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t j = 0; j < len; ++j) mx[j] = std::max<double>(mx[j], z[c * S + s0 + j]);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t j = 0; j < len; ++j) ls[j] += std::exp(double(z[c * S + s0 + j]) - mx[j]);
  for (int64_t j = 0; j < len; ++j) ls[j] = std::log(ls[j]);
}

void check_target(int64_t t, int64_t C, int64_t ignore_index) {
  if (t != ignore_index && (t < 0 || t >= C))
    arg_error("target: class index " + std::to_string(t) + " out of range [0, " +
              std::to_string(C) + ") (and not ignore_index " + std::to_string(ignore_index) + ")");
}

}  // namespace

template <class T>
void softmax_forward(int64_t N, int64_t C, int64_t S, T* y, const T* x, bool log) {
  for_each_block(N, S, [&](int64_t n, int64_t s0, int64_t len) {
    double mx[kBlock], ls[kBlock];
    const T* xn = x + n * C * S;
    T* yn = y + n * C * S;
    block_logsumexp(C, S, xn, s0, len, mx, ls);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < len; ++j) {
        const double lp = (double(xn[c * S + s0 + j]) - mx[j]) - ls[j];
        yn[c * S + s0 + j] = T(log ? lp : std::exp(lp));
      }
  });
}

template <class T>
void softmax_backward(int64_t N, int64_t C, int64_t S, T* dx, const T* dy, const T* y, bool log) {
  for_each_block(N, S, [&](int64_t n, int64_t s0, int64_t len) {
    double dot[kBlock] = {};
    const int64_t off = n * C * S + s0;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < len; ++j) {
        const int64_t i = off + c * S + j;
        dot[j] += log ? double(dy[i]) : double(dy[i]) * y[i];  // Σ dy (log) or Σ dy·y
      }
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < len; ++j) {
        const int64_t i = off + c * S + j;
        dx[i] = log ? T(dy[i] - std::exp(double(y[i])) * dot[j]) : T(y[i] * (dy[i] - dot[j]));
      }
  });
}

template <class T>
void cross_entropy_forward(int64_t N, int64_t C, int64_t S, T* loss, T* lse_out, const T* logits,
                           const int64_t* target, const T* weight, int64_t ignore_index,
                           double label_smoothing) {
  const double eps = label_smoothing;
  for_each_block(N, S, [&](int64_t n, int64_t s0, int64_t len) {
    double mx[kBlock], ls[kBlock], smooth[kBlock] = {};
    const T* zn = logits + n * C * S;
    block_logsumexp(C, S, zn, s0, len, mx, ls);
    if (eps != 0)  // lse − z_c = ls − (z_c − mx)
      for (int64_t c = 0; c < C; ++c) {
        const double wc = weight ? double(weight[c]) : 1.0;
        for (int64_t j = 0; j < len; ++j)
          smooth[j] += wc * (ls[j] - (zn[c * S + s0 + j] - mx[j]));
      }
    for (int64_t j = 0; j < len; ++j) {
      const int64_t item = n * S + s0 + j, t = target[item];
      check_target(t, C, ignore_index);
      lse_out[item] = T(mx[j] + ls[j]);
      if (t == ignore_index) {
        loss[item] = T(0);
        continue;
      }
      const double wt = weight ? double(weight[t]) : 1.0;
      loss[item] = T((1 - eps) * wt * (ls[j] - (zn[t * S + s0 + j] - mx[j])) +
                     eps / double(C) * smooth[j]);
    }
  });
}

template <class T>
void cross_entropy_backward(int64_t N, int64_t C, int64_t S, T* dlogits, const T* item_grad,
                            const T* logits, const T* lse, const int64_t* target, const T* weight,
                            int64_t ignore_index, double label_smoothing) {
  const double eps = label_smoothing;
  double wsum = double(C);
  if (weight) {
    wsum = 0;
    for (int64_t c = 0; c < C; ++c) wsum += weight[c];
  }
  // ∂loss/∂z_c = (1 − ε)·w[t]·(p_c − [c = t]) + (ε/C)·(W·p_c − w[c]),  W = Σ w. The stored lse
  // may have lost log Σ e^{z − max} to rounding (float, huge logits: tied 1e17 logits gave
  // p = 1 each), so p_c = e^{z_c − lse} / Σ_c' e^{z_c' − lse}: exact whatever lse's error.
  for_each_block(N, S, [&](int64_t n, int64_t s0, int64_t len) {
    const int64_t off = n * C * S + s0;
    for (int64_t j = 0; j < len; ++j) {
      const int64_t item = n * S + s0 + j, t = target[item];
      check_target(t, C, ignore_index);
      const double g = t == ignore_index ? 0.0 : double(item_grad[item]);
      const double wt = t == ignore_index ? 0.0 : (weight ? double(weight[t]) : 1.0);
      const double a = g * ((1 - eps) * wt + eps / double(C) * wsum);  // multiplies p_c
      double psum = 0;
      for (int64_t c = 0; c < C; ++c) {  // e^{z_c − lse}, held in dlogits until p_c is formed
        const int64_t i = off + c * S + j;
        const double e = std::exp(double(logits[i]) - double(lse[item]));
        psum += e;
        dlogits[i] = T(e);
      }
      for (int64_t c = 0; c < C; ++c) {
        const int64_t i = off + c * S + j;
        const double p = double(dlogits[i]) / psum;
        const double wc = weight ? double(weight[c]) : 1.0;
        double d = a * p - g * eps / double(C) * wc;
        if (c == t) d -= g * (1 - eps) * wt;
        dlogits[i] = T(d);
      }
    }
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
