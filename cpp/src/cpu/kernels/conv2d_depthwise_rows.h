// conv2d_depthwise_rows.h — depthwise-convolution microkernels: one input channel, one output
// channel, the filter given as `taps` weights with their offsets into a zero-padded plane (the
// loops lay strided planes out as column phases, so every tap reads unit-stride rows at any
// stride and dilation). No threads, no allocation.
//   fwd: out[i*ldo + j] = Σ_{t<taps} w[t] · x[i*ldi + off[t] + j]
//        for i < mr <= kDepthwiseMR, j < nj <= kDepthwiseNJ; nj a multiple of `lanes`
//   bwd_weight: dw[t] += Σ_{i<rows, j<nj} dy[i*ldy + j] · x[i*ldi + off[t] + j]
//        for t < taps (kDepthwiseTapsPerPass per sweep of dy); any nj (dy's tail read masked)
// The forward reads x[i*ldi + off[t] + j] for j < nj, the weight gradient for
// j < roundup(nj, lanes) (finite values: the masked dy lanes multiply them by zero).
#pragma once
#include <cstdint>

namespace cnnfast {

template <class T>
struct DepthwiseRowKernels {
  const char* name;
  int64_t lanes;  // nj granularity of fwd
  void (*fwd)(int64_t mr, int64_t nj, const T* x, int64_t ldi, int64_t taps, const int64_t* off,
              const T* w, T* out, int64_t ldo);
  void (*bwd_weight)(int64_t taps, const int64_t* off, int64_t rows, int64_t nj, const T* dy,
                     int64_t ldy, const T* x, int64_t ldi, T* dw);
};

constexpr int64_t kDepthwiseMR = 4;    // output rows per fwd call
constexpr int64_t kDepthwiseNJ = 24;   // outputs per row per fwd call
constexpr int64_t kDepthwiseTapsPerPass = 12;  // weight-gradient accumulators

extern const DepthwiseRowKernels<float> conv2d_depthwise_rows_f32__scalar;
extern const DepthwiseRowKernels<double> conv2d_depthwise_rows_f64__scalar;
extern const DepthwiseRowKernels<float> conv2d_depthwise_rows_f32__avx2;
extern const DepthwiseRowKernels<float> conv2d_depthwise_rows_f32__avx512;

// The portable loops (the scalar table, and f64 on every ISA).
template <class T>
void depthwise_fwd_generic(int64_t mr, int64_t nj, const T* x, int64_t ldi, int64_t taps,
                           const int64_t* off, const T* w, T* out, int64_t ldo) {
  for (int64_t i = 0; i < mr; ++i) {
    T* o = out + i * ldo;
    for (int64_t j = 0; j < nj; ++j) o[j] = T(0);
    for (int64_t t = 0; t < taps; ++t) {
      const T wv = w[t];
      const T* src = x + i * ldi + off[t];
      for (int64_t j = 0; j < nj; ++j) o[j] += wv * src[j];
    }
  }
}

template <class T>
void depthwise_bwd_weight_generic(int64_t taps, const int64_t* off, int64_t rows, int64_t nj,
                                  const T* dy, int64_t ldy, const T* x, int64_t ldi, T* dw) {
  for (int64_t t = 0; t < taps; ++t) {
    T sum = T(0);
    for (int64_t i = 0; i < rows; ++i) {
      const T* g = dy + i * ldy;
      const T* src = x + i * ldi + off[t];
      for (int64_t j = 0; j < nj; ++j) sum += g[j] * src[j];
    }
    dw[t] += sum;
  }
}

}  // namespace cnnfast
