// conv2d_implicit_tile.h — the implicit-GEMM convolution tile microkernels' contract. One call
// computes an MR x NR tile of outputs: MR output positions along one output row, NR output
// channels, reading the input straight from a zero-padded image (no im2col, no packing of it):
//   x    points at the padded input under tap (0, 0) of the tile's first position
//   off  is (np) offsets: off[t] = (c*Hp + r*dil_h)*Wp + s*dil_w for reduction index t=(c,r,s)
//   sx   is the input step between neighbouring output positions (stride_w)
//   wp   is (np, NR): wp[t*NR + j] = W(k0 + j, c, r, s), zero for channels past K
//   out  is (MR, NR), row-major: out[i*NR + j] = Σ_t x[off[t] + i*sx] · wp[t*NR + j]
// Full tiles always: the caller provides readable (zero) slack past the image for the last
// positions and ignores what it does not need. No threads, no allocation; one ISA per file.
#pragma once
#include <cstdint>

namespace cnnfast {

template <class T>
struct ImplicitTileKernel {
  const char* name;
  int mr, nr;  // positions x output channels per tile
  void (*tile)(int64_t np, const T* x, const int64_t* off, int64_t sx, const T* wp, T* out);
};

extern const ImplicitTileKernel<float> conv2d_implicit_f32_6x16__scalar;
extern const ImplicitTileKernel<double> conv2d_implicit_f64_6x16__scalar;
extern const ImplicitTileKernel<float> conv2d_implicit_f32_6x16__avx2;
extern const ImplicitTileKernel<double> conv2d_implicit_f64_6x16__avx2;
extern const ImplicitTileKernel<float> conv2d_implicit_f32_6x16__avx512;
extern const ImplicitTileKernel<double> conv2d_implicit_f64_6x16__avx512;

}  // namespace cnnfast
