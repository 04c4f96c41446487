// conv2d_ref.cpp — naive conv2d: Z[n,k,i,j] = b[k] + Σ_{c,r,s} X[n, g·Cg+c, i·sh−pt+r·dh,
// j·sw−pl+s·dw] · W[k,c,r,s], with g = k / Kg; out-of-range input reads as zero. Accumulates in T.
#include "ref/conv2d_ref.h"

#include <algorithm>

namespace cnnfast::ref {
namespace {

// Calls f(n, k, i, j, c_in, c_w, r, s, ih, iw) for every in-bounds tap of every output.
template <class F>
void for_each_tap(const Conv2dParams& p, F&& f) {
  const int64_t Cg = p.Cg(), Kg = p.Kg();
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t i = 0; i < p.P; ++i)
        for (int64_t j = 0; j < p.Q; ++j)
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < p.R; ++r) {
              const int64_t ih = i * p.stride_h - p.pad_top + r * p.dil_h;
              if (ih < 0 || ih >= p.H) continue;
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t iw = j * p.stride_w - p.pad_left + s * p.dil_w;
                if (iw < 0 || iw >= p.W) continue;
                f(n, k, i, j, (k / Kg) * Cg + c, c, r, s, ih, iw);
              }
            }
}

}  // namespace

template <class T>
void conv2d_forward(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b) {
  const int64_t PQ = p.P * p.Q;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      std::fill(y + (n * p.K + k) * PQ, y + (n * p.K + k + 1) * PQ, b ? b[k] : T(0));
  for_each_tap(p, [&](int64_t n, int64_t k, int64_t i, int64_t j, int64_t ci, int64_t c, int64_t r,
                      int64_t s, int64_t ih, int64_t iw) {
    y[((n * p.K + k) * p.P + i) * p.Q + j] +=
        x[((n * p.C + ci) * p.H + ih) * p.W + iw] * w[((k * p.Cg() + c) * p.R + r) * p.S + s];
  });
}

template <class T>
void conv2d_backward_data(const Conv2dParams& p, T* dx, const T* dy, const T* w) {
  std::fill(dx, dx + p.N * p.C * p.H * p.W, T(0));
  for_each_tap(p, [&](int64_t n, int64_t k, int64_t i, int64_t j, int64_t ci, int64_t c, int64_t r,
                      int64_t s, int64_t ih, int64_t iw) {
    dx[((n * p.C + ci) * p.H + ih) * p.W + iw] +=
        dy[((n * p.K + k) * p.P + i) * p.Q + j] * w[((k * p.Cg() + c) * p.R + r) * p.S + s];
  });
}

template <class T>
void conv2d_backward_weight(const Conv2dParams& p, T* dw, T* db, const T* dy, const T* x) {
  if (dw)
    for_each_tap(p, [&](int64_t n, int64_t k, int64_t i, int64_t j, int64_t ci, int64_t c,
                        int64_t r, int64_t s, int64_t ih, int64_t iw) {
      dw[((k * p.Cg() + c) * p.R + r) * p.S + s] +=
          dy[((n * p.K + k) * p.P + i) * p.Q + j] * x[((n * p.C + ci) * p.H + ih) * p.W + iw];
    });
  if (db)
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t k = 0; k < p.K; ++k)
        for (int64_t ij = 0; ij < p.P * p.Q; ++ij) db[k] += dy[(n * p.K + k) * p.P * p.Q + ij];
}

#define CNNFAST_INSTANTIATE(T)                                                               \
  template void conv2d_forward<T>(const Conv2dParams&, T*, const T*, const T*, const T*);    \
  template void conv2d_backward_data<T>(const Conv2dParams&, T*, const T*, const T*);        \
  template void conv2d_backward_weight<T>(const Conv2dParams&, T*, T*, const T*, const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::ref
