// lrn.cpp — local response normalization across channels (AlexNet; PyTorch's LocalResponseNorm)
// forward/backward over x (N, C, S); work items are (n, c) rows of S values, split over threads.
#include <algorithm>
#include <cmath>

#include "cnnfast/nn.h"
#include "cnnfast/runtime.h"
#include "cpu/parallel.h"

namespace cnnfast {

template <class T>
void lrn_forward(int64_t N, int64_t C, int64_t S, T* y, T* save_scale, const T* x, int64_t size,
                 double alpha, double beta, double k) {
  const int64_t before = size / 2, after = (size - 1) / 2;
  const double a = alpha / double(size);
  for_each_item(N * C, get_num_threads(), [&](int64_t item, int) {
    const int64_t n = item / C, c = item % C;
    const int64_t c0 = std::max<int64_t>(0, c - before), c1 = std::min<int64_t>(C - 1, c + after);
    T* sc = save_scale + item * S;
    for (int64_t s = 0; s < S; ++s) sc[s] = T(0);
    for (int64_t cc = c0; cc <= c1; ++cc) {
      const T* xc = x + (n * C + cc) * S;
      for (int64_t s = 0; s < S; ++s) sc[s] += xc[s] * xc[s];
    }
    const T* xi = x + item * S;
    T* yi = y + item * S;
    for (int64_t s = 0; s < S; ++s) {
      sc[s] = T(k + a * sc[s]);
      yi[s] = T(xi[s] * std::pow(double(sc[s]), -beta));
    }
  });
}

template <class T>
void lrn_backward(int64_t N, int64_t C, int64_t S, T* dx, const T* dy, const T* x,
                  const T* save_scale, int64_t size, double alpha, double beta) {
  // dx[c] = dy[c]·scale[c]^−β − (2αβ/size)·x[c]·Σ_{c' whose window holds c} dy[c']·x[c']·scale[c']^(−β−1)
  const int64_t before = size / 2, after = (size - 1) / 2;
  const double a = 2.0 * alpha * beta / double(size);
  for_each_item(N * C, get_num_threads(), [&](int64_t item, int) {
    const int64_t n = item / C, c = item % C;
    const int64_t c0 = std::max<int64_t>(0, c - after), c1 = std::min<int64_t>(C - 1, c + before);
    const T* xi = x + item * S;
    const T* gi = dy + item * S;
    const T* si = save_scale + item * S;
    T* di = dx + item * S;
    for (int64_t s = 0; s < S; ++s) di[s] = T(gi[s] * std::pow(double(si[s]), -beta));
    for (int64_t cc = c0; cc <= c1; ++cc) {
      const int64_t o = (n * C + cc) * S;
      for (int64_t s = 0; s < S; ++s)
        di[s] -= T(a * xi[s] * dy[o + s] * x[o + s] * std::pow(double(save_scale[o + s]), -beta - 1));
    }
  });
}

#define CNNFAST_INSTANTIATE(T)                                                              \
  template void lrn_forward<T>(int64_t, int64_t, int64_t, T*, T*, const T*, int64_t, double, \
                               double, double);                                              \
  template void lrn_backward<T>(int64_t, int64_t, int64_t, T*, const T*, const T*, const T*,  \
                                int64_t, double, double);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast
