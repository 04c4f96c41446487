// pool__scalar.cpp — portable pooling microkernels (f32 and f64): the reference-speed fallback
// every ISA has, and the f64 kernels on every ISA.
#include "cpu/kernels/pool_ukernel.h"

namespace cnnfast {
namespace {

template <class T>
void max_rows(int64_t n, int64_t nrows, const T* const* rows, const int64_t* row_index,
              int64_t off, int64_t kw, int64_t dw, int64_t sw, T* y, int64_t* idx) {
  for (int64_t j = 0; j < n; ++j)
    max_rows_one(nrows, rows, row_index, kw, dw, off + j * sw, y + j, idx ? idx + j : nullptr);
}

template <class T>
void sum_rows(int64_t n, int64_t nrows, const T* const* rows, int64_t off, int64_t kw, int64_t dw,
              int64_t sw, T scale, T* y) {
  for (int64_t j = 0; j < n; ++j) y[j] = scale * sum_rows_one(nrows, rows, kw, dw, off + j * sw);
}

template <class T>
void max_2cols(int64_t nrows, const T* const* rows, const int64_t* row_index, int64_t off, T* y,
               int64_t* idx) {
  max_rows_one(nrows, rows, row_index, 2, 1, off, y, idx);
}

template <class T>
void max2x2(int64_t n, const T* a, const T* b, int64_t ia, int64_t ib, T* y, int64_t* idx) {
  for (int64_t j = 0; j < n; ++j)
    max2x2_one(a + 2 * j, b + 2 * j, ia + 2 * j, ib + 2 * j, y + j, idx ? idx + j : nullptr);
}

template <class T>
void sum2x2(int64_t n, const T* a, const T* b, T scale, T* y) {
  for (int64_t j = 0; j < n; ++j) y[j] = scale * sum2x2_one(a + 2 * j, b + 2 * j);
}

template <class T>
bool max2x2_bwd(int64_t n, const T* dy, const int64_t* idx, int64_t ia, int64_t W, T* a,
                bool /*stream*/) {
  bool ok = true;
  for (int64_t j = 0; j < n; ++j) ok &= max2x2_bwd_one(dy[j], idx[j], ia + 2 * j, W, a + 2 * j);
  return ok;
}

template <class T>
void avg2x2_bwd(int64_t n, const T* dy, T scale, int64_t W, T* a, bool /*stream*/) {
  for (int64_t j = 0; j < n; ++j) avg2x2_bwd_one(dy[j], scale, W, a + 2 * j);
}

template <class T>
bool unpool2x2_bwd(int64_t n, const T* a, const int64_t* idx, int64_t ia, int64_t W, T* dx) {
  bool ok = true;
  for (int64_t j = 0; j < n; ++j) ok &= unpool2x2_bwd_one(a + 2 * j, idx[j], ia + 2 * j, W, dx + j);
  return ok;
}

template <class T>
void combine_rows(int64_t n, int64_t nrows, const T* const* rows, const T* f, const T* colscale,
                  T* y) {
  combine_rows_from<T>(0, n, nrows, rows, f, colscale, y);
}

template <class T>
void gather_phases(int64_t n, int64_t s, int64_t kt, const int64_t* ntaps, const int64_t* offs,
                   const T* src, T* dx, bool /*stream*/) {
  gather_phases_from<T>(0, n, s, kt, ntaps, offs, src, dx);
}

template <class T>
void sum_planes(int64_t planes, int64_t n, const T* x, T scale, T* y) {
  for (int64_t p = 0; p < planes; ++p, x += n) {
    T s = T(0);
    for (int64_t i = 0; i < n; ++i) s += x[i];
    y[p] = scale * s;
  }
}

}  // namespace

const PoolKernels<float> pool_f32__scalar = {
    "scalar",           &max_rows<float>,      &sum_rows<float>,    &max_2cols<float>,
    &max2x2<float>,     &sum2x2<float>,        &max2x2_bwd<float>,    &avg2x2_bwd<float>,
    &unpool2x2_bwd<float>, &combine_rows<float>, &gather_phases<float>, &sum_planes<float>};
const PoolKernels<double> pool_f64__scalar = {
    "scalar",            &max_rows<double>,      &sum_rows<double>,   &max_2cols<double>,
    &max2x2<double>,     &sum2x2<double>,        &max2x2_bwd<double>,   &avg2x2_bwd<double>,
    &unpool2x2_bwd<double>, &combine_rows<double>, &gather_phases<double>,
    &sum_planes<double>};

}  // namespace cnnfast
