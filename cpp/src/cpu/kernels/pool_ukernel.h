// pool_ukernel.h — the pooling microkernel contract shared by the ISA files in this folder.
// A microkernel reduces the windows of n consecutive outputs along W: no threads, no allocation.
//   rows[r] (r < nrows) points at column 0 of input row r, whose flat plane index is row_index[r]
//   (rows in raster order); output j reads rows[r][off + t*dw + j*sw] for t < kw
//   max_rows: y[j] = max, idx[j] (if idx != null) = row_index[r] + off + t*dw + j*sw of the first
//             maximum in raster order; a NaN wins (the first one) and propagates.
//   sum_rows: y[j] = scale * Σ
// Callers guarantee every index fits in int32 (planes < 2^31 elements) so SIMD lanes can hold
// it; larger planes use the scalar kernels.
#pragma once
#include <cstdint>

namespace cnnfast {

template <class T>
struct PoolKernels {
  const char* name;
  void (*max_rows)(int64_t n, int64_t nrows, const T* const* rows, const int64_t* row_index,
                   int64_t off, int64_t kw, int64_t dw, int64_t sw, T* y, int64_t* idx);
  void (*sum_rows)(int64_t n, int64_t nrows, const T* const* rows, int64_t off, int64_t kw,
                   int64_t dw, int64_t sw, T scale, T* y);
};

extern const PoolKernels<float> pool_f32__scalar;
extern const PoolKernels<double> pool_f64__scalar;
extern const PoolKernels<float> pool_f32__avx2;
extern const PoolKernels<float> pool_f32__avx512;

// The scalar reduction of one output (also the SIMD kernels' tail).
template <class T>
inline void max_rows_one(int64_t nrows, const T* const* rows, const int64_t* row_index,
                         int64_t kw, int64_t dw, int64_t off, T* y, int64_t* idx) {
  T best = rows[0][off];
  int64_t arg = row_index[0] + off;
  for (int64_t r = 0; r < nrows; ++r) {
    const T* src = rows[r] + off;
    for (int64_t t = 0; t < kw; ++t) {
      const T v = src[t * dw];
      if (v > best || (v != v && best == best)) {
        best = v;
        arg = row_index[r] + off + t * dw;
      }
    }
  }
  *y = best;
  if (idx) *idx = arg;
}

template <class T>
inline T sum_rows_one(int64_t nrows, const T* const* rows, int64_t kw, int64_t dw, int64_t off) {
  T sum = 0;
  for (int64_t r = 0; r < nrows; ++r) {
    const T* src = rows[r] + off;
    for (int64_t t = 0; t < kw; ++t) sum += src[t * dw];
  }
  return sum;
}

}  // namespace cnnfast
