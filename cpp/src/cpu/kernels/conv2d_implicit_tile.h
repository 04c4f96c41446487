// conv2d_implicit_tile.h — the implicit-GEMM convolution tile microkernels' contract: an MR x NR
// tile of a GEMM whose A operand is read straight from a zero-padded image (no im2col, no packing)
// through MR row pointers and a table of n offsets:
//   out[i*NR + j] (= or +=) Σ_{t<n} xs[i][off[t]] · b[t*ldb + j]      (i < MR, j < NR)
// Forward: row i is output position i of a row segment (xs[i] = image under its tap (0,0)),
//   off[t] = (c*Hp + r*dil_h)*Wp + s*dil_w runs over t = (c,r,s), b = packed weights (np, NR).
// Weight gradient: row i is tap t0+i (xs[i] = image + its tap offset), off[u] is the image
//   offset of output position u, b = dY transposed to (positions, channels).
// Full tiles always: every xs[i][off[t]] must be readable (callers point unused rows at valid
// memory and ignore them). No threads, no allocation; one ISA per file.
#pragma once
#include <cstdint>

namespace cnnfast {

// interleave2: two blocks of tiles (position q, channel k at a[q*lds + k], b[q*lds + k]), plus a
// bias per channel, written as nk channel rows of 2·nq outputs in which a and b alternate:
//   y[k*ldy + 2q] = a[q*lds + k] + ba[k],  y[k*ldy + 2q + 1] = b[q*lds + k] + bb[k]
// (a tiled convolution's banks (·, ·, 0) and (·, ·, 1) of one output row, T_w = 2).
// deinterleave2: its adjoint without the bias, nk channel rows of 2·nq values split into the
// two (position, channel) blocks:  a[q*lds + k] = y[k*ldy + 2q],  b[q*lds + k] = y[k*ldy + 2q + 1]
// (dY of one output row into the two banks' transposed dY for the weight gradient).
template <class T>
struct ImplicitTileKernel {
  const char* name;
  int mr, nr;  // positions x output channels per tile
  void (*tile)(int64_t n, const T* const* xs, const int64_t* off, const T* b, int64_t ldb, T* out,
               bool accumulate);
  // One tile (mr, nr) to nk channel rows of mr positions, with the forward's epilogue:
  //   y[j*ldy + i] = act(tile[i*nr + j] + bias[j])   (i < mr, j < nk; bias may be null;
  //   relu: negatives to 0, NaN kept)
  void (*store_channels)(int64_t mr, int64_t nk, const T* tile, const T* bias, bool relu, T* y,
                         int64_t ldy);
  // dst[c*ldd + r] = src[r*lds + c] (r < rows, c < cols): the weight gradient's dY of one image
  // (channels, positions) as its B operand (positions, channels).
  void (*transpose)(int64_t rows, int64_t cols, const T* src, int64_t lds, T* dst, int64_t ldd);
  void (*interleave2)(int64_t nk, int64_t nq, const T* a, const T* b, int64_t lds, const T* ba,
                      const T* bb, T* y, int64_t ldy);
  void (*deinterleave2)(int64_t nk, int64_t nq, const T* y, int64_t ldy, T* a, T* b, int64_t lds);
};

extern const ImplicitTileKernel<float> conv2d_implicit_f32_6x16__scalar;
extern const ImplicitTileKernel<double> conv2d_implicit_f64_6x16__scalar;
extern const ImplicitTileKernel<float> conv2d_implicit_f32_6x16__avx2;
extern const ImplicitTileKernel<double> conv2d_implicit_f64_6x16__avx2;
extern const ImplicitTileKernel<float> conv2d_implicit_f32_12x16__avx512;
extern const ImplicitTileKernel<float> conv2d_implicit_f32_8x32__avx512;
extern const ImplicitTileKernel<float> conv2d_implicit_f32_6x64__avx512;
extern const ImplicitTileKernel<double> conv2d_implicit_f64_6x16__avx512;

}  // namespace cnnfast
