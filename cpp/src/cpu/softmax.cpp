// softmax.cpp — softmax / log-softmax over the channel dim of x (N, C, S) and the fused
// softmax + cross-entropy forward/backward: loops over the dispatched exp_shifted kernel.
// Two loop shapes:
//   S == 1 (class scores, (N, C)): one item per row; a row's C values are contiguous, so the
//     kernel runs along c (in chunks of kChunk) with one shift per row
//   S > 1 (per-pixel classes): items are (n, block of kBlock positions); the C values of a
//     position are S apart, so a block walks c outermost, the kernel running along the block's
//     positions with one shift per position, maxima and sums held in local arrays
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

namespace cnnfast {
namespace {

constexpr int64_t kBlock = 64;   // positions per block (S > 1)
constexpr int64_t kChunk = 256;  // row values per kernel call (S == 1)
constexpr int64_t kSumRun = 16;  // exponentials summed in T before joining the double sum

// Calls f(n, s0, len) for every block of positions.
template <class F>
void for_each_block(int64_t N, int64_t S, F&& f) {
  const int64_t blocks = (S + kBlock - 1) / kBlock;
  for_each_item(N * blocks, get_num_threads(), [&](int64_t item, int) {
    const int64_t n = item / blocks, s0 = (item % blocks) * kBlock;
    f(n, s0, std::min(kBlock, S - s0));
  });
}

template <class T>
double sum_as_double(int64_t n, const T* v) {  // eight chains: not one add's latency per value
  double s[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) s[l] += double(v[i + l]);
  for (; i < n; ++i) s[0] += double(v[i]);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

template <class T>
T row_max(int64_t n, const T* v) {  // std::max(m, NaN) = m: a NaN reaches the sum instead
  T m[8];
  for (T& l : m) l = -std::numeric_limits<T>::infinity();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) m[l] = std::max(m[l], v[i + l]);
  for (; i < n; ++i) m[0] = std::max(m[0], v[i]);
  for (int l = 1; l < 8; ++l) m[0] = std::max(m[0], m[l]);
  return m[0];
}

// log Σ_c e^{z[c·cs + j]} = mx[j] + ls[j], kept as the two parts: results are formed as
// (z − mx) − ls, since mx + ls loses ls (≤ log C) to mx's rounding once |mx| passes about
// 2^52·ls (softmax of tied logits 1e17 summed to 2). The exponentials go to e (C, len) with
// row stride ld (e may be the output).
template <class T>
void block_logsumexp(const EltwiseKernel<T>& k, int64_t C, int64_t S, const T* z, int64_t len,
                     T* mx, double* ls, T* e, int64_t ld) {
  for (int64_t j = 0; j < len; ++j) mx[j] = -std::numeric_limits<T>::infinity(), ls[j] = 0;
  for (int64_t c = 0; c < C; ++c)  // std::max(m, NaN) = m: a NaN reaches the sum below
    for (int64_t j = 0; j < len; ++j) mx[j] = std::max(mx[j], z[c * S + j]);
  for (int64_t c0 = 0; c0 < C; c0 += kSumRun) {  // runs of T sums (T's vector width), added
    T run[kBlock] = {};                             // to double: one rounding per value per run
    for (int64_t c = c0; c < std::min(C, c0 + kSumRun); ++c) {
      T* ec = e + c * ld;
      k.exp_shifted(len, ec, z + c * S, mx, nullptr, 1);
      for (int64_t j = 0; j < len; ++j) run[j] += ec[j];
    }
    for (int64_t j = 0; j < len; ++j) ls[j] += double(run[j]);
  }
  for (int64_t j = 0; j < len; ++j) ls[j] = std::log(ls[j]);
}

// The same for one contiguous row z (C,); e (C,) may be the output, or null (a scratch chunk).
template <class T>
void row_logsumexp(const EltwiseKernel<T>& k, int64_t C, const T* z, T& mx, double& ls, T* e) {
  mx = row_max(C, z);
  T chunk[kChunk];
  double sum = 0;
  for (int64_t c0 = 0; c0 < C; c0 += kChunk) {
    const int64_t m = std::min(kChunk, C - c0);
    T* ec = e ? e + c0 : chunk;
    k.exp_shifted(m, ec, z + c0, &mx, nullptr, 0);
    sum += sum_as_double(m, ec);
  }
  ls = std::log(sum);
}

void check_target(int64_t t, int64_t C, int64_t ignore_index) {
  if (t != ignore_index && (t < 0 || t >= C))
    arg_error("target: class index " + std::to_string(t) + " out of range [0, " +
              std::to_string(C) + ") (and not ignore_index " + std::to_string(ignore_index) + ")");
}

}  // namespace

template <class T>
void softmax_forward(int64_t N, int64_t C, int64_t S, T* y, const T* x, bool log) {
  const EltwiseKernel<T>& k = eltwise_kernel<T>();
  if (S == 1) {
    for_each_item(N, get_num_threads(), [&](int64_t n, int) {
      const T* xn = x + n * C;
      T* yn = y + n * C;
      T mx;
      double ls;
      row_logsumexp(k, C, xn, mx, ls, log ? nullptr : yn);
      if (log) {
        for (int64_t c = 0; c < C; ++c) yn[c] = T((double(xn[c]) - mx) - ls);
      } else {  // y holds e^{x − mx}: divide by the sum
        const T inv = T(std::exp(-ls));
        for (int64_t c = 0; c < C; ++c) yn[c] *= inv;
      }
    });
    return;
  }
  for_each_block(N, S, [&](int64_t n, int64_t s0, int64_t len) {
    T mx[kBlock], e[kBlock];
    double ls[kBlock];
    const T* xn = x + n * C * S + s0;
    T* yn = y + n * C * S + s0;
    block_logsumexp(k, C, S, xn, len, mx, ls, log ? e : yn, log ? 0 : S);
    if (log) {  // in T: (x − mx) is exact or within an ulp of itself; one rounding of ls
      T lsT[kBlock];
      for (int64_t j = 0; j < len; ++j) lsT[j] = T(ls[j]);
      for (int64_t c = 0; c < C; ++c)
        for (int64_t j = 0; j < len; ++j) yn[c * S + j] = (xn[c * S + j] - mx[j]) - lsT[j];
      return;
    }
    T inv[kBlock];
    for (int64_t j = 0; j < len; ++j) inv[j] = T(std::exp(-ls[j]));
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < len; ++j) yn[c * S + j] *= inv[j];
  });
}

// dx = y·(dy − Σ dy·y) (softmax) or dy − e^y·Σ dy (log-softmax), per position.
template <class T>
void softmax_backward(int64_t N, int64_t C, int64_t S, T* dx, const T* dy, const T* y, bool log) {
  const EltwiseKernel<T>& k = eltwise_kernel<T>();
  if (S == 1) {
    for_each_item(N, get_num_threads(), [&](int64_t n, int) {
      const int64_t off = n * C;
      double dot = 0;
      for (int64_t c = 0; c < C; ++c)
        dot += log ? double(dy[off + c]) : double(dy[off + c]) * y[off + c];
      if (log) k.exp_shifted(C, dx + off, y + off, nullptr, nullptr, 0);
      for (int64_t c = 0; c < C; ++c) {
        const int64_t i = off + c;
        dx[i] = log ? T(dy[i] - double(dx[i]) * dot) : T(y[i] * (dy[i] - dot));
      }
    });
    return;
  }
  for_each_block(N, S, [&](int64_t n, int64_t s0, int64_t len) {
    double dot[kBlock] = {};
    const int64_t off = n * C * S + s0;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < len; ++j) {
        const int64_t i = off + c * S + j;
        dot[j] += log ? double(dy[i]) : double(dy[i]) * y[i];  // Σ dy (log) or Σ dy·y
      }
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i0 = off + c * S;
      if (log) k.exp_shifted(len, dx + i0, y + i0, nullptr, nullptr, 1);
      for (int64_t j = 0; j < len; ++j) {
        const int64_t i = i0 + j;
        dx[i] = log ? T(dy[i] - double(dx[i]) * dot[j]) : T(y[i] * (dy[i] - dot[j]));
      }
    }
  });
}

template <class T>
void cross_entropy_forward(int64_t N, int64_t C, int64_t S, T* loss, T* lse_out, const T* logits,
                           const int64_t* target, const T* weight, int64_t ignore_index,
                           double label_smoothing) {
  const EltwiseKernel<T>& k = eltwise_kernel<T>();
  const double eps = label_smoothing;
  // One position: lse, and its loss from (z_t − mx) and, with smoothing, Σ_c w_c·(z_c − mx).
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
    loss[item] = T((1 - eps) * wt * (ls - (double(z[t * cs]) - mx)) + eps / double(C) * smooth);
  };
  if (S == 1) {
    for_each_item(N, get_num_threads(), [&](int64_t n, int) {
      T mx;
      double ls;
      row_logsumexp(k, C, logits + n * C, mx, ls, static_cast<T*>(nullptr));
      finish(n, logits + n * C, 1, mx, ls);
    });
    return;
  }
  for_each_block(N, S, [&](int64_t n, int64_t s0, int64_t len) {
    T mx[kBlock], e[kBlock];
    double ls[kBlock];
    const T* zn = logits + n * C * S + s0;
    block_logsumexp(k, C, S, zn, len, mx, ls, e, 0);
    for (int64_t j = 0; j < len; ++j) finish(n * S + s0 + j, zn + j, S, mx[j], ls[j]);
  });
}

// ∂loss/∂z_c = (1 − ε)·w[t]·(p_c − [c = t]) + (ε/C)·(W·p_c − w[c]),  W = Σ w. The stored lse
// may have lost log Σ e^{z − max} to rounding (float, huge logits: tied 1e17 logits gave
// p = 1 each), so p_c = e^{z_c − lse} / Σ_c' e^{z_c' − lse}: exact whatever lse's error.
template <class T>
void cross_entropy_backward(int64_t N, int64_t C, int64_t S, T* dlogits, const T* item_grad,
                            const T* logits, const T* lse, const int64_t* target, const T* weight,
                            int64_t ignore_index, double label_smoothing) {
  const EltwiseKernel<T>& k = eltwise_kernel<T>();
  const double eps = label_smoothing;
  double wsum = double(C);
  if (weight) {
    wsum = 0;
    for (int64_t c = 0; c < C; ++c) wsum += weight[c];
  }
  // One position's coefficients: d_c = e_c·coef − smooth·w_c − [c = t]·hit.
  struct Coef {
    double coef, smooth, hit;
    int64_t t;
  };
  const auto coefficients = [&](int64_t item, double psum) {
    const int64_t t = target[item];
    check_target(t, C, ignore_index);
    const double g = t == ignore_index ? 0.0 : double(item_grad[item]);
    const double wt = t == ignore_index ? 0.0 : (weight ? double(weight[t]) : 1.0);
    return Coef{g * ((1 - eps) * wt + eps / double(C) * wsum) / psum, g * eps / double(C),
                g * (1 - eps) * wt, t};
  };
  if (S == 1) {
    for_each_item(N, get_num_threads(), [&](int64_t n, int) {
      T* d = dlogits + n * C;
      k.exp_shifted(C, d, logits + n * C, lse + n, nullptr, 0);  // e_c, held in d
      const Coef q = coefficients(n, sum_as_double(C, d));
      const double et = q.t == ignore_index ? 0.0 : double(d[q.t]);
      for (int64_t c = 0; c < C; ++c)
        d[c] = T(double(d[c]) * q.coef - q.smooth * (weight ? double(weight[c]) : 1.0));
      if (q.t != ignore_index)
        d[q.t] = T(et * q.coef - q.smooth * (weight ? double(weight[q.t]) : 1.0) - q.hit);
    });
    return;
  }
  for_each_block(N, S, [&](int64_t n, int64_t s0, int64_t len) {
    const int64_t off = n * C * S + s0, item0 = n * S + s0;
    double psum[kBlock] = {}, et[kBlock];
    T coef[kBlock], smooth[kBlock];  // T: the pass over C·len values runs at T's width
    Coef q[kBlock];
    for (int64_t c = 0; c < C; ++c) {  // e_c, held in dlogits until the coefficients are known
      T* d = dlogits + off + c * S;
      k.exp_shifted(len, d, logits + off + c * S, lse + item0, nullptr, 1);
      for (int64_t j = 0; j < len; ++j) psum[j] += double(d[j]);
    }
    for (int64_t j = 0; j < len; ++j) {
      q[j] = coefficients(item0 + j, psum[j]);
      coef[j] = T(q[j].coef), smooth[j] = T(q[j].smooth);
      et[j] = q[j].t == ignore_index ? 0.0 : double(dlogits[off + q[j].t * S + j]);
    }
    for (int64_t c = 0; c < C; ++c) {
      T* d = dlogits + off + c * S;
      const T wc = weight ? weight[c] : T(1);
      for (int64_t j = 0; j < len; ++j) d[j] = d[j] * coef[j] - smooth[j] * wc;
    }
    for (int64_t j = 0; j < len; ++j)
      if (q[j].t != ignore_index) {
        const double wt = weight ? double(weight[q[j].t]) : 1.0;
        dlogits[off + q[j].t * S + j] = T(et[j] * q[j].coef - q[j].smooth * wt - q[j].hit);
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
