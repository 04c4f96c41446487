// conv2d_implicit.h — implicit-GEMM convolution forward (see conv2d_implicit.cpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "cnnfast/checked.h"
#include "cnnfast/conv.h"

namespace cnnfast::cpu {

constexpr int64_t kImplicitMaxTile = 256;  // MR*NR of every ISA's tile (stack buffers)
constexpr int64_t kImplicitMaxRows = 16;   // MR of every ISA's tile

// One (image, group) as a zero-padded plane stack (Cg, Hp, Wp) followed by zero slack.
struct PaddedPlanes {
  int64_t Hp, Wp, size;
  PaddedPlanes(const Conv2dParams& p, int64_t mr)
      : Hp(p.H + p.pad_top + p.pad_bottom), Wp(p.W + p.pad_left + p.pad_right) {
    // Slack: the forward's last tile of the last row reads up to (mr - 1) * stride_w past it.
    size = checked_add(checked_mul(checked_mul(p.Cg(), Hp), Wp), mr * p.stride_w + 16);
  }
};

// xp (Cg, Hp, Wp) + slack = the zero-padded image xg (Cg, H, W).
template <class T>
void pad_planes(const Conv2dParams& p, const PaddedPlanes& pl, const T* xg, T* xp) {
  std::fill(xp, xp + pl.size, T(0));
  for (int64_t c = 0; c < p.Cg(); ++c)
    for (int64_t h = 0; h < p.H; ++h)
      std::copy_n(xg + (c * p.H + h) * p.W, p.W,
                  xp + (c * pl.Hp + h + p.pad_top) * pl.Wp + p.pad_left);
}

// off[t] for t = (c, r, s): where tap (r, s) of channel c sits relative to a position's origin.
inline std::vector<int64_t> tap_offsets(const Conv2dParams& p, const PaddedPlanes& pl) {
  std::vector<int64_t> off(static_cast<size_t>(p.Cg() * p.R * p.S));
  for (int64_t c = 0; c < p.Cg(); ++c)
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s)
        off[(c * p.R + r) * p.S + s] = (c * pl.Hp + r * p.dil_h) * pl.Wp + s * p.dil_w;
  return off;
}


// Whether the implicit path runs this layer well: enough images (or groups) to give every thread
// one, and the packed weights of one group small enough to stay in L2 while a row is swept.
bool implicit_forward_fits(const Conv2dParams& p, int nthreads);

template <class T>
void conv2d_forward_implicit(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                             Activation act = Activation::none);

// Weight gradient as an implicit GEMM: dW_g[Kg, CgRS] += Σ_n dY_g(n) · col(n)ᵀ with col read
// from the padded image (see conv2d_implicit_weight.cpp). Fits when every thread gets an
// (image, group) item.
bool implicit_weight_fits(const Conv2dParams& p, int nthreads);

template <class T>
void conv2d_backward_weight_implicit(const Conv2dParams& p, T* dw, T* db, const T* dy,
                                     const T* x);

}  // namespace cnnfast::cpu
