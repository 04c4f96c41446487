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

}  // namespace

const PoolKernels<float> pool_f32__scalar = {"scalar", &max_rows<float>, &sum_rows<float>};
const PoolKernels<double> pool_f64__scalar = {"scalar", &max_rows<double>, &sum_rows<double>};

}  // namespace cnnfast
