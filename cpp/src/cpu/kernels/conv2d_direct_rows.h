// conv2d_direct_rows.h — the direct-convolution row microkernels' contract. One call handles one
// output row of one (output channel, input channel) pair against a zero-padded input plane:
//   x  points at the padded input element under output (i, 0) and tap (0, 0); kernel row r is
//      x + r*ldr (ldr = dilation_h * padded width); tap (r, s) of output j is x[r*ldr + j*sw + s*dw]
//   w  is the (R, S) filter of the pair
//   fwd:        y[j] += Σ_{r,s} w[r,s] · x[r*ldr + j*sw + s*dw]                     (j < Q)
//   bwd_data:   x[r*ldr + j*sw + s*dw] += w[r,s] · dy[j]   (x is the padded dx plane here)
//   bwd_weight: acc[(r*S + s)*Q + j] += dy[j] · x[r*ldr + j*sw + s*dw]   (summed by the caller)
// No threads, no allocation; one ISA per file (the same source built with each ISA's flags).
#pragma once
#include <cstdint>

namespace cnnfast {

template <class T>
struct DirectRowKernels {
  const char* name;
  void (*fwd)(T* y, const T* x, int64_t ldr, const T* w, int64_t R, int64_t S, int64_t Q,
              int64_t sw, int64_t dw);
  void (*bwd_data)(T* x, int64_t ldr, const T* dy, const T* w, int64_t R, int64_t S, int64_t Q,
                   int64_t sw, int64_t dw);
  void (*bwd_weight)(T* acc, const T* dy, const T* x, int64_t ldr, int64_t R, int64_t S,
                     int64_t Q, int64_t sw, int64_t dw);
};

extern const DirectRowKernels<float> conv2d_direct_rows_f32__scalar;
extern const DirectRowKernels<double> conv2d_direct_rows_f64__scalar;
extern const DirectRowKernels<float> conv2d_direct_rows_f32__avx2;
extern const DirectRowKernels<double> conv2d_direct_rows_f64__avx2;
extern const DirectRowKernels<float> conv2d_direct_rows_f32__avx512;
extern const DirectRowKernels<double> conv2d_direct_rows_f64__avx512;

}  // namespace cnnfast
