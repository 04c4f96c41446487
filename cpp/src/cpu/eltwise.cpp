// eltwise.cpp — loops for the elementwise ops (activations, dropout mask application): the array
// is cut into fixed-size chunks split over threads; the forward activations run the dispatched
// microkernels, the backward ones are plain loops (one multiply-add per element).
#include <algorithm>
#include <vector>

#include "cnnfast/nn.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"
#include "cnnfast/runtime.h"

namespace cnnfast {
namespace {

constexpr int64_t kChunk = 16384;  // elements per work item: large enough to amortize a thread

// Calls f(begin, end) over [0, n) in chunks, threads splitting the chunks.
template <class F>
void for_each_chunk(int64_t n, F&& f) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const int nt = static_cast<int>(std::min<int64_t>(get_num_threads(), std::max<int64_t>(chunks, 1)));
  for_each_item(chunks, nt, [&](int64_t c, int) {
    const int64_t b = c * kChunk;
    f(b, std::min(n, b + kChunk));
  });
}

}  // namespace

template <class T>
void activation_forward(Elementwise act, int64_t n, T* y, const T* x, double slope) {
  const EltwiseKernel<T>& k = eltwise_kernel<T>();
  for_each_chunk(n, [&](int64_t b, int64_t e) {
    switch (act) {
      case Elementwise::relu: k.leaky_relu_fwd(e - b, y + b, x + b, T(0)); break;
      case Elementwise::leaky_relu: k.leaky_relu_fwd(e - b, y + b, x + b, T(slope)); break;
      case Elementwise::sigmoid: k.sigmoid_fwd(e - b, y + b, x + b); break;
      case Elementwise::tanh: k.tanh_fwd(e - b, y + b, x + b); break;
    }
  });
}

template <class T>
void activation_backward(Elementwise act, int64_t n, T* dx, const T* dy, const T* saved,
                         double slope) {
  const EltwiseKernel<T>& k = eltwise_kernel<T>();
  for_each_chunk(n, [&](int64_t b, int64_t e) {
    switch (act) {
      case Elementwise::relu: k.leaky_relu_bwd(e - b, dx + b, dy + b, saved + b, T(0)); break;
      case Elementwise::leaky_relu:
        k.leaky_relu_bwd(e - b, dx + b, dy + b, saved + b, T(slope));
        break;
      case Elementwise::sigmoid:  // saved = y
        for (int64_t i = b; i < e; ++i) dx[i] = dy[i] * saved[i] * (T(1) - saved[i]);
        break;
      case Elementwise::tanh:  // saved = y
        for (int64_t i = b; i < e; ++i) dx[i] = dy[i] * (T(1) - saved[i] * saved[i]);
        break;
    }
  });
}

// y = x · (mask ? scale : 0): a multiply, as torch's, so a dropped NaN or inf gives NaN rather
// than vanishing (the CUDA twin multiplies by its float mask too).
template <class T>
void dropout_apply(int64_t outer, int64_t inner, T* y, const T* x, const uint8_t* mask, T scale) {
  for_each_chunk(outer * inner, [&](int64_t b, int64_t e) {
    if (inner == 1) {
      for (int64_t i = b; i < e; ++i) y[i] = x[i] * (mask[i] ? scale : T(0));
      return;
    }
    for (int64_t i = b; i < e; ++i) y[i] = x[i] * (mask[i / inner] ? scale : T(0));
  });
}

template <class T>
double squared_error_sum(int64_t n, const T* x, const T* t) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(static_cast<size_t>(std::max<int64_t>(chunks, 1)), 0.0);
  for_each_chunk(n, [&](int64_t b, int64_t e) {
    constexpr int kSums = 8;  // independent chains (vectorizable); fixed order within the chunk
    double s[kSums] = {};
    int64_t i = b;
    for (; i + kSums <= e; i += kSums)
      for (int k = 0; k < kSums; ++k) {
        const T d = x[i + k] - t[i + k];
        s[k] += double(d * d);
      }
    for (int k = 0; i < e; ++i, ++k) {
      const T d = x[i] - t[i];
      s[k] += double(d * d);
    }
    double sum = 0;
    for (int k = 0; k < kSums; ++k) sum += s[k];
    part[static_cast<size_t>(b / kChunk)] = sum;
  });
  double total = 0;
  for (double v : part) total += v;  // chunk order: the same at any thread count
  return total;
}

template <class T>
void squared_error_grad(int64_t n, T* dx, const T* x, const T* t, T scale) {
  for_each_chunk(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dx[i] = (x[i] - t[i]) * scale;
  });
}

#define CNNFAST_INSTANTIATE(T)                                                               \
  template double squared_error_sum<T>(int64_t, const T*, const T*);                          \
  template void squared_error_grad<T>(int64_t, T*, const T*, const T*, T);                    \
  template void activation_forward<T>(Elementwise, int64_t, T*, const T*, double);            \
  template void activation_backward<T>(Elementwise, int64_t, T*, const T*, const T*, double); \
  template void dropout_apply<T>(int64_t, int64_t, T*, const T*, const uint8_t*, T);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast
