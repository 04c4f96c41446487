// batch_norm.cpp — batch normalization forward (train / eval) and backward over x (N, C, S):
// channels are split over threads; sums accumulate in double.
#include <cmath>

#include "cnnfast/nn.h"
#include "cnnfast/runtime.h"
#include "cpu/parallel.h"

namespace cnnfast {
namespace {

constexpr int kLanes = 8;  // independent double partial sums: no serial add-latency chain

// Σ over channel c of an (N, C, S) layout of f(flat index), in double, in a fixed order (element
// i of a row goes to lane i mod 8, lanes added pairwise): the same at any thread count, and
// several times faster than one running sum.
template <class F>
double channel_sum(int64_t N, int64_t C, int64_t S, int64_t c, F f) {
  double lane[kLanes] = {};
  for (int64_t n = 0; n < N; ++n) {
    const int64_t row = (n * C + c) * S;
    int64_t s = 0;
    for (; s + kLanes <= S; s += kLanes)
      for (int k = 0; k < kLanes; ++k) lane[k] += f(row + s + k);
    for (int k = 0; s < S; ++s, ++k) lane[k] += f(row + s);
  }
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int k = 0; k < w; ++k) lane[k] += lane[k + w];
  return lane[0];
}

}  // namespace

template <class T>
void batch_norm_forward(int64_t N, int64_t C, int64_t S, T* y, T* save_mean, T* save_invstd,
                        const T* x, const T* gamma, const T* beta, T* running_mean,
                        T* running_var, bool training, double momentum, double eps) {
  const int64_t M = N * S;  // values per channel
  for_each_item(C, get_num_threads(), [&](int64_t c, int) {
    double mean, invstd;
    if (training) {
      const double sum = channel_sum(N, C, S, c, [x](int64_t i) { return double(x[i]); });
      mean = sum / double(M);
      const double sq = channel_sum(N, C, S, c, [x, mean](int64_t i) {
        const double d = double(x[i]) - mean;
        return d * d;
      });
      const double var = sq / double(M);
      invstd = 1.0 / std::sqrt(var + eps);
      if (running_mean) running_mean[c] = T((1 - momentum) * running_mean[c] + momentum * mean);
      if (running_var) {
        const double unbiased = M > 1 ? sq / double(M - 1) : var;
        running_var[c] = T((1 - momentum) * running_var[c] + momentum * unbiased);
      }
    } else {
      mean = running_mean[c];
      invstd = 1.0 / std::sqrt(double(running_var[c]) + eps);
    }
    save_mean[c] = T(mean);
    save_invstd[c] = T(invstd);
    const double g = gamma ? double(gamma[c]) : 1.0, b = beta ? double(beta[c]) : 0.0;
    const T a = T(g * invstd), shift = T(b - mean * g * invstd);
    for (int64_t n = 0; n < N; ++n) {
      const T* xc = x + (n * C + c) * S;
      T* yc = y + (n * C + c) * S;
      for (int64_t s = 0; s < S; ++s) yc[s] = a * xc[s] + shift;
    }
  });
}

template <class T>
void batch_norm_backward(int64_t N, int64_t C, int64_t S, T* dx, T* dgamma, T* dbeta, const T* dy,
                         const T* x, const T* gamma, const T* save_mean, const T* save_invstd,
                         bool training) {
  const int64_t M = N * S;
  for_each_item(C, get_num_threads(), [&](int64_t c, int) {
    const double mean = save_mean[c], invstd = save_invstd[c];
    // Σ dy and Σ dy·x̂ (x̂ = (x − mean)·invstd, applied once to the sum)
    const double sum_dy = channel_sum(N, C, S, c, [dy](int64_t i) { return double(dy[i]); });
    const double sum_dy_xhat = invstd * channel_sum(N, C, S, c, [dy, x, mean](int64_t i) {
      return double(dy[i]) * (double(x[i]) - mean);
    });
    if (dgamma) dgamma[c] += T(sum_dy_xhat);
    if (dbeta) dbeta[c] += T(sum_dy);
    if (!dx) return;
    const double g = gamma ? double(gamma[c]) : 1.0;
    // train: dx = g·invstd·(dy − mean(dy) − x̂·mean(dy·x̂)); eval: dx = g·invstd·dy.
    // As dx = a·dy + b·(x − mean) + e with per-channel constants, in T (vectorizes).
    const double k = g * invstd;
    const double mdy = training ? sum_dy / double(M) : 0.0;
    const double mdyx = training ? sum_dy_xhat / double(M) : 0.0;
    const T a = T(k), b = T(-k * invstd * mdyx), e = T(-k * mdy), m = T(mean);
    for (int64_t n = 0; n < N; ++n) {
      const T* xc = x + (n * C + c) * S;
      const T* gc = dy + (n * C + c) * S;
      T* dc = dx + (n * C + c) * S;
      if (training)
        for (int64_t s = 0; s < S; ++s) dc[s] = a * gc[s] + b * (xc[s] - m) + e;
      else  // x does not enter: an infinite or NaN x must not make 0 · inf (torch: g·invstd·dy)
        for (int64_t s = 0; s < S; ++s) dc[s] = a * gc[s];
    }
  });
}

#define CNNFAST_INSTANTIATE(T)                                                                  \
  template void batch_norm_forward<T>(int64_t, int64_t, int64_t, T*, T*, T*, const T*, const T*, \
                                      const T*, T*, T*, bool, double, double);                   \
  template void batch_norm_backward<T>(int64_t, int64_t, int64_t, T*, T*, T*, const T*, const T*, \
                                       const T*, const T*, const T*, bool);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast
