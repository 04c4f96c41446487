// optim.cpp — in-place optimizer updates (PyTorch's SGD / Adam / AdamW rules, foreach-free):
// one pass over each parameter tensor, chunks split over threads; arithmetic in double.
#include <algorithm>
#include <cmath>

#include "cnnfast/nn.h"
#include "cnnfast/runtime.h"
#include "cpu/parallel.h"

namespace cnnfast {
namespace {

constexpr int64_t kChunk = 16384;

template <class F>
void for_each_chunk(int64_t n, F&& f) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  for_each_item(chunks, static_cast<int>(std::min<int64_t>(get_num_threads(), std::max<int64_t>(chunks, 1))),
                [&](int64_t c, int) { f(c * kChunk, std::min(n, (c + 1) * kChunk)); });
}

}  // namespace

// One chunk of SGD with the loop-invariant choices as template flags, so the loop has no
// branches and vectorizes (float <-> double conversions included): 2.2 -> ~0.5 ns an element.
// Without weight decay the decay term is not formed at all: 0 · inf would turn an infinite
// weight into NaN (torch keeps it infinite).
template <bool kDecay, bool kMomentum, bool kFirst, bool kNesterov, class T>
void sgd_chunk(int64_t b, int64_t e, T* __restrict p, const T* __restrict g, T* __restrict buf,
               double lr, double momentum, double dampening, double weight_decay) {
  for (int64_t i = b; i < e; ++i) {
    double d = double(g[i]);
    if (kDecay) d += weight_decay * double(p[i]);
    if (kMomentum) {
      const double m = kFirst ? d : momentum * double(buf[i]) + (1 - dampening) * d;
      buf[i] = T(m);
      d = kNesterov ? d + momentum * m : m;
    }
    p[i] = T(double(p[i]) - lr * d);
  }
}

template <class T>
using SgdChunk = void (*)(int64_t, int64_t, T*, const T*, T*, double, double, double, double);

template <bool kDecay, class T>
SgdChunk<T> pick_sgd_chunk(double momentum, bool nesterov, bool first) {
  if (momentum == 0) return &sgd_chunk<kDecay, false, false, false, T>;
  if (first)
    return nesterov ? &sgd_chunk<kDecay, true, true, true, T>
                    : &sgd_chunk<kDecay, true, true, false, T>;
  return nesterov ? &sgd_chunk<kDecay, true, false, true, T>
                  : &sgd_chunk<kDecay, true, false, false, T>;
}

template <class T>
void sgd_step(int64_t n, T* p, const T* g, T* buf, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool first) {
  const SgdChunk<T> run = weight_decay != 0
                              ? pick_sgd_chunk<true, T>(momentum, nesterov, first)
                              : pick_sgd_chunk<false, T>(momentum, nesterov, first);
  for_each_chunk(n, [&](int64_t b, int64_t e) {
    run(b, e, p, g, buf, lr, momentum, dampening, weight_decay);
  });
}

template <class T>
void adam_step(int64_t n, T* p, const T* g, T* m, T* v, T* max_v, int64_t t, double lr,
               double beta1, double beta2, double eps, double weight_decay, bool decoupled,
               bool amsgrad) {
  const double bc1 = 1 - std::pow(beta1, double(t)), bc2 = 1 - std::pow(beta2, double(t));
  const double step_size = lr / bc1, bc2_sqrt = std::sqrt(bc2);
  for_each_chunk(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      double pi = p[i], gi = g[i];
      if (decoupled)
        pi *= 1 - lr * weight_decay;
      else if (weight_decay != 0)  // 0 · inf: NaN (see sgd_chunk)
        gi += weight_decay * pi;
      const double mi = beta1 * double(m[i]) + (1 - beta1) * gi;
      const double vi = beta2 * double(v[i]) + (1 - beta2) * gi * gi;
      m[i] = T(mi);
      v[i] = T(vi);
      double vd = vi;
      if (amsgrad) {
        vd = std::max(double(max_v[i]), vi);
        max_v[i] = T(vd);
      }
      p[i] = T(pi - step_size * mi / (std::sqrt(vd) / bc2_sqrt + eps));
    }
  });
}

#define CNNFAST_INSTANTIATE(T)                                                                  \
  template void sgd_step<T>(int64_t, T*, const T*, T*, double, double, double, double, bool,    \
                            bool);                                                              \
  template void adam_step<T>(int64_t, T*, const T*, T*, T*, T*, int64_t, double, double, double, \
                             double, double, bool, bool);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast
