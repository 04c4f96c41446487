// linear.cpp — fully connected layer forward/backward on the packed GEMM (cpu/gemm.h); the
// transposed operands are expressed by strides, so nothing is copied.
#include <algorithm>

#include "cnnfast/nn.h"
#include "cnnfast/runtime.h"
#include "cpu/gemm.h"

namespace cnnfast {

template <class T>
void linear_forward(int64_t N, int64_t in, int64_t out, T* y, const T* x, const T* w, const T* b) {
  // y (N, out) [= b] + x (N, in) · w^T where B(p, j) = w[j, p]: rsb = 1, csb = in.
  if (b)
    for (int64_t n = 0; n < N; ++n) std::copy(b, b + out, y + n * out);
  gemm<T>(N, out, in, x, in, 1, w, 1, in, y, out, /*accumulate=*/b != nullptr, get_num_threads());
}

template <class T>
void linear_backward(int64_t N, int64_t in, int64_t out, T* dx, T* dw, T* db, const T* dy,
                     const T* x, const T* w) {
  const int nt = get_num_threads();
  if (dx) gemm<T>(N, in, out, dy, out, 1, w, in, 1, dx, in, false, nt);   // dy (N, out) · w (out, in)
  if (dw) gemm<T>(out, in, N, dy, 1, out, x, in, 1, dw, in, true, nt);    // dy^T (out, N) · x (N, in)
  if (db)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < out; ++j) db[j] += dy[n * out + j];
}

#define CNNFAST_INSTANTIATE(T)                                                               \
  template void linear_forward<T>(int64_t, int64_t, int64_t, T*, const T*, const T*, const T*); \
  template void linear_backward<T>(int64_t, int64_t, int64_t, T*, T*, T*, const T*, const T*, \
                                   const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast
