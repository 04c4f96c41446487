// pool_ukernel.h — the pooling microkernel contract shared by the ISA files in this folder.
// A microkernel reduces the windows of n consecutive outputs along W: no threads, no allocation.
//   rows[r] (r < nrows) points at column 0 of input row r, whose flat plane index is row_index[r]
//   (rows in raster order); output j reads rows[r][off + t*dw + j*sw] for t < kw
//   max_rows: y[j] = max, idx[j] (if idx != null) = row_index[r] + off + t*dw + j*sw of the first
//             maximum in raster order; a NaN wins (the first one) and propagates.
//   sum_rows: y[j] = scale * Σ
//   max_2cols: max_rows for one output whose window is the 2 adjacent columns off, off + 1 of
//             nrows <= 4 rows (a 3-wide window cut to 2 by padding: the border outputs).
//   max2x2 / sum2x2: the same for 2x2 windows at stride 2 (no padding, no dilation) over the two
//             input rows a, b (flat plane indices ia, ib): output j reads a[2j], a[2j+1], b[2j],
//             b[2j+1] in that (raster) order — LeNet/VGG/U-Net pooling without per-row setup.
//   max2x2_bwd: their backward for one output row: a = b - W are dx rows (flat index ia of a[0]);
//             columns 2j, 2j+1 of both get dy[j] at the cell idx[j] names, 0 at the other three.
//             Returns false if some idx[j] is not one of its window's four cells.
//   avg2x2_bwd: the same rows for avg pooling: all four cells of window j get scale * dy[j].
//             (For both, stream: the rows may be written with non-temporal stores, as for
//             gather_phases.)
//   unpool2x2_bwd: max-unpooling's backward for one pooled row, a gather: a = b - W are rows of
//             the unpooled gradient (flat index ia of a[0]); dx[j] = the one of a[2j], a[2j+1],
//             b[2j], b[2j+1] that idx[j] names. Returns false if some idx[j] is not one of those
//             four cells (dx[j] is then 0 there).
//   combine_rows: the H/D direction of avg pooling's backward: for j < n,
//             y[j] = (Σ_{r < nrows} f[r] * rows[r][j]) * colscale[j] (summed in r order).
//   gather_phases: the W-direction of avg pooling's backward as a gather, each dx element written
//             once: for w < n, phase f = w mod s, j = w / s:
//             dx[w] = Σ_{i < ntaps[f]} src[j + offs[f*kt + i]] (summed in i order; 0 if no taps).
//             src must be readable at every index named (the caller zero-pads it).
//             stream: dx may be written with non-temporal stores where its blocks allow it (for
//             outputs far larger than the caches); the caller fences (stream_fence) before the
//             rows are read by another thread.
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
  void (*max_2cols)(int64_t nrows, const T* const* rows, const int64_t* row_index, int64_t off,
                    T* y, int64_t* idx);
  void (*max2x2)(int64_t n, const T* a, const T* b, int64_t ia, int64_t ib, T* y, int64_t* idx);
  void (*sum2x2)(int64_t n, const T* a, const T* b, T scale, T* y);
  bool (*max2x2_bwd)(int64_t n, const T* dy, const int64_t* idx, int64_t ia, int64_t W, T* a,
                     bool stream);
  void (*avg2x2_bwd)(int64_t n, const T* dy, T scale, int64_t W, T* a, bool stream);
  bool (*unpool2x2_bwd)(int64_t n, const T* a, const int64_t* idx, int64_t ia, int64_t W, T* dx);
  void (*combine_rows)(int64_t n, int64_t nrows, const T* const* rows, const T* f,
                       const T* colscale, T* y);
  void (*gather_phases)(int64_t n, int64_t s, int64_t kt, const int64_t* ntaps,
                        const int64_t* offs, const T* src, T* dx, bool stream);
  // y[p] = scale · Σ_{i<n} x[p·n + i] for p < planes (global average pooling; n <= 4096).
  void (*sum_planes)(int64_t planes, int64_t n, const T* x, T scale, T* y);
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

// One 2x2 stride-2 output (the SIMD kernels' tail): max_rows_one / sum_rows_one for two rows.
template <class T>
inline void max2x2_one(const T* a, const T* b, int64_t ia, int64_t ib, T* y, int64_t* idx) {
  const T v[4] = {a[0], a[1], b[0], b[1]};
  const int64_t at[4] = {ia, ia + 1, ib, ib + 1};
  T best = v[0];
  int64_t arg = at[0];
  for (int t = 1; t < 4; ++t)
    if (v[t] > best || (v[t] != v[t] && best == best)) {
      best = v[t];
      arg = at[t];
    }
  *y = best;
  if (idx) *idx = arg;
}

// idx - ia without signed overflow (any int64 index may come in; wrapped values land outside
// the window's four cells just the same).
inline int64_t cell_of(int64_t idx, int64_t ia) {
  return static_cast<int64_t>(static_cast<uint64_t>(idx) - static_cast<uint64_t>(ia));
}

// Branch-free (the cell is data-dependent and unpredictable): true when idx was in the window.
template <class T>
inline bool max2x2_bwd_one(T g, int64_t idx, int64_t ia, int64_t W, T* a) {
  const int64_t r = cell_of(idx, ia);  // 0, 1: row a; W, W + 1: row b = a + W
  const T v[2] = {T(0), g};
  a[0] = v[r == 0];
  a[1] = v[r == 1];
  a[W] = v[r == W];
  a[W + 1] = v[r == W + 1];
  return (r == 0) | (r == 1) | (r == W) | (r == W + 1);
}

// One avg2x2_bwd output (the SIMD kernels' tail).
template <class T>
inline void avg2x2_bwd_one(T g, T scale, int64_t W, T* a) {
  const T v = scale * g;
  a[0] = a[1] = a[W] = a[W + 1] = v;
}

// One unpool2x2_bwd output (the SIMD kernels' tail): true when idx was in the window.
template <class T>
inline bool unpool2x2_bwd_one(const T* a, int64_t idx, int64_t ia, int64_t W, T* dx) {
  const int64_t r = cell_of(idx, ia);  // 0, 1: row a; W, W + 1: row b = a + W
  const bool in_window = (r == 0) | (r == 1) | (r == W) | (r == W + 1);
  *dx = in_window ? a[r] : T(0);
  return in_window;
}

// combine_rows for j in [j0, n) (the SIMD kernels' tail).
template <class T>
inline void combine_rows_from(int64_t j0, int64_t n, int64_t nrows, const T* const* rows,
                              const T* f, const T* colscale, T* y) {
  for (int64_t j = j0; j < n; ++j) {
    T sum = 0;
    for (int64_t r = 0; r < nrows; ++r) sum += f[r] * rows[r][j];
    y[j] = sum * colscale[j];
  }
}

// gather_phases for w in [w0, n) (the SIMD kernels' tail).
template <class T>
inline void gather_phases_from(int64_t w0, int64_t n, int64_t s, int64_t kt, const int64_t* ntaps,
                               const int64_t* offs, const T* src, T* dx) {
  int64_t f = w0 % s, j = w0 / s;  // w = j*s + f, stepped without a division per element
  for (int64_t w = w0; w < n; ++w) {
    const T* at = src + j;
    const int64_t* o = offs + f * kt;
    T sum = 0;
    for (int64_t i = 0; i < ntaps[f]; ++i) sum += at[o[i]];
    dx[w] = sum;
    if (++f == s) f = 0, ++j;
  }
}

template <class T>
inline T sum2x2_one(const T* a, const T* b) {
  T sum = 0;
  sum += a[0];
  sum += a[1];
  sum += b[0];
  sum += b[1];
  return sum;
}

}  // namespace cnnfast
