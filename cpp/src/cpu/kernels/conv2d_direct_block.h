// conv2d_direct_block.h — register-blocked direct-convolution microkernels for layers with few
// output channels at unit stride and dilation (LeNet's C1: 1 -> 6 channels, 5x5), where the
// implicit GEMM's 16-channel tiles run 6/16 full and the row kernels re-load every output row
// per tap. No threads, no allocation.
//   fwd: out[k*ldo + j] = Σ_{c<C, r<R, s<S} w[k*ldk + c*ldwc + r*S + s]·x[c*ldc + r*ldr + j + s]
//        for k < nk <= kNK (kNKNarrow when nj <= kNJNarrow), j < nj <= kNJ; nj is a multiple of
//        `lanes` (the loop pads rows).
//   bwd_weight: dw[k*ldw + s] += Σ_{i<rows, j<nj} dy[k*ldk + i*ldy + j] · x[i*ldr + j + s]
//        for k < nk <= kNKW, s < S <= kMaxS; any nj (dy's tail is read masked).
// x is a zero-padded input plane; forward reads x rows up to column nj + S - 2, the weight
// gradient up to column roundup(nj, lanes) + S - 2 (those columns must hold finite values).
#pragma once
#include <cstdint>

namespace cnnfast {

template <class T>
struct DirectBlockKernels {
  const char* name;
  int64_t lanes;  // nj granularity
  void (*fwd)(int64_t nk, int64_t nj, const T* x, int64_t ldc, int64_t ldr, int64_t C,
              int64_t R, int64_t S, const T* w, int64_t ldk, int64_t ldwc, T* out, int64_t ldo);
  void (*bwd_weight)(int64_t nk, int64_t rows, int64_t nj, const T* dy, int64_t ldk,
                     int64_t ldy, const T* x, int64_t ldr, int64_t S, T* dw, int64_t ldw);
};

constexpr int64_t kDirectBlockNK = 3;   // output channels per forward call
constexpr int64_t kDirectBlockNJ = 32;  // outputs per forward call
constexpr int64_t kDirectBlockNKNarrow = 6;   // ... when the call has at most
constexpr int64_t kDirectBlockNJNarrow = 16;  // this many outputs (2 vectors x 6 channels)
constexpr int64_t kDirectBlockNKW = 2;  // output channels per weight-gradient call
constexpr int64_t kDirectBlockMaxS = 6;  // filter width the weight-gradient kernel holds

extern const DirectBlockKernels<float> conv2d_direct_block_f32__scalar;
extern const DirectBlockKernels<double> conv2d_direct_block_f64__scalar;
extern const DirectBlockKernels<float> conv2d_direct_block_f32__avx2;
extern const DirectBlockKernels<float> conv2d_direct_block_f32__avx512;

// The portable loops (the scalar table, and f64 on every ISA).
template <class T>
void direct_block_fwd_generic(int64_t nk, int64_t nj, const T* x, int64_t ldc, int64_t ldr,
                              int64_t C, int64_t R, int64_t S, const T* w, int64_t ldk,
                              int64_t ldwc, T* out, int64_t ldo) {
  for (int64_t k = 0; k < nk; ++k) {
    T* o = out + k * ldo;
    for (int64_t j = 0; j < nj; ++j) o[j] = T(0);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t s = 0; s < S; ++s) {
          const T wv = w[k * ldk + c * ldwc + r * S + s];
          const T* src = x + c * ldc + r * ldr + s;
          for (int64_t j = 0; j < nj; ++j) o[j] += wv * src[j];
        }
  }
}

template <class T>
void direct_block_bwd_weight_generic(int64_t nk, int64_t rows, int64_t nj, const T* dy,
                                     int64_t ldk, int64_t ldy, const T* x, int64_t ldr, int64_t S,
                                     T* dw, int64_t ldw) {
  for (int64_t k = 0; k < nk; ++k)
    for (int64_t s = 0; s < S; ++s) {
      T sum = T(0);
      for (int64_t i = 0; i < rows; ++i) {
        const T* g = dy + k * ldk + i * ldy;
        const T* src = x + i * ldr + s;
        for (int64_t j = 0; j < nj; ++j) sum += g[j] * src[j];
      }
      dw[k * ldw + s] += sum;
    }
}

}  // namespace cnnfast
