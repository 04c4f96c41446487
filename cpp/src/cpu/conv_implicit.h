// conv_implicit.h — implicit-GEMM convolution (2-D and 3-D; 2-D is 3-D with unit depth): the
// forward and the weight gradient read the column matrix straight from a zero-padded copy of each
// image through an offset table (see conv_implicit.cpp, conv_implicit_weight.cpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "cnnfast/checked.h"
#include "cnnfast/conv.h"
#include "cnnfast/conv_family.h"
#include "cnnfast/runtime.h"
#include "cpu/parallel.h"

namespace cnnfast::cpu {

constexpr int64_t kImplicitMaxTile = 384;  // MR*NR of every ISA's tile (stack buffers)
constexpr int64_t kImplicitMaxRows = 16;   // MR of every ISA's tile

// The 3-D description of a 2-D convolution (depth 1, no depth padding).
Conv3dParams as_conv3d(const Conv2dParams& p);

// 1x1x1, stride 1, no padding: GEMM runs on the image itself; the implicit path has no edge.
bool conv3d_is_pointwise(const Conv3dParams& p);

// No zero padding on any side: tiles that read only real positions' windows can read the image
// in place.
inline bool conv3d_unpadded(const Conv3dParams& p) {
  return p.pad_front == 0 && p.pad_back == 0 && p.pad_top == 0 && p.pad_bottom == 0 &&
         p.pad_left == 0 && p.pad_right == 0;
}

// One (image, group) as a zero-padded volume stack (Cg, Dp, Hp, Wp) followed by zero slack.
// Tile rows past the last position repeat that position; the slack covers the fixed-size
// copies of conv2d_gemm.cpp's column panels, which read a whole panel (NR <= 32 floats) from a
// real position at unit stride. Nothing reads a stride's worth past the end (a stride of 10^9
// must not cost 4 GB).
struct PaddedVolume {
  static constexpr int64_t kSlack = 64;
  int64_t Dp, Hp, Wp, size;
  explicit PaddedVolume(const Conv3dParams& p)
      : Dp(p.D + p.pad_front + p.pad_back), Hp(p.H + p.pad_top + p.pad_bottom),
        Wp(p.W + p.pad_left + p.pad_right) {
    size = checked_add(checked_mul(checked_mul(checked_mul(p.Cg(), Dp), Hp), Wp), kSlack);
  }
};

// xp (Cg, Dp, Hp, Wp) + slack = the zero-padded image xg (Cg, D, H, W). Each element is written
// once: the image rows with their left and right pads, zeros for the pad rows and slabs between
// them (in memory order) and the slack.
template <class T>
void pad_volume(const Conv3dParams& p, const PaddedVolume& v, const T* xg, T* xp) {
  T* at = xp;  // everything before `at` is written
  auto zero_to = [&](T* end) {
    std::fill(at, end, T(0));
    at = end;
  };
  for (int64_t c = 0; c < p.Cg(); ++c)
    for (int64_t d = 0; d < p.D; ++d)
      for (int64_t h = 0; h < p.H; ++h) {
        T* row = xp + ((c * v.Dp + d + p.pad_front) * v.Hp + h + p.pad_top) * v.Wp;
        zero_to(row + p.pad_left);
        at = std::copy_n(xg + ((c * p.D + d) * p.H + h) * p.W, p.W, at);
      }
  zero_to(xp + v.size);
}

// off[t] for t = (c, a, r, s): where tap (a, r, s) of channel c sits from a position's origin.
inline std::vector<int64_t> tap_offsets(const Conv3dParams& p, const PaddedVolume& v) {
  std::vector<int64_t> off(static_cast<size_t>(p.Cg() * p.taps()));
  int64_t t = 0;
  for (int64_t c = 0; c < p.Cg(); ++c)
    for (int64_t a = 0; a < p.KD; ++a)
      for (int64_t r = 0; r < p.KH; ++r)
        for (int64_t s = 0; s < p.KW; ++s)
          off[t++] = ((c * v.Dp + a * p.dil_d) * v.Hp + r * p.dil_h) * v.Wp + s * p.dil_w;
  return off;
}

// Forward: fits when one group's packed weights stay in L2 while a row is swept.
bool implicit_forward_fits(const Conv3dParams& p);
// Weight gradient: fits when every thread gets an (image, group) item, or, sharing an image's
// positions, when a thread's copy of the weight-gradient sums stays small (kSplitTileSums).
bool implicit_weight_fits(const Conv3dParams& p, int nthreads);

// dw (G·Kg, np) += Σ_u acc[u], u < nthr, in thread order: acc[u] (acc_size apart) holds the tiles
// (G, KB, TB, MR, NR) of one thread's weight-gradient sums, tile (g, kb, tb) = taps tb·MR.. x
// channels kb·NR.. of group (or bank) g. Rows split over threads.
template <class T>
void add_weight_tiles(int64_t G, int64_t Kg, int64_t np, int64_t MR, int64_t NR, const T* acc,
                      int64_t acc_size, int nthr, T* dw) {
  const int64_t KB = (Kg + NR - 1) / NR, TB = (np + MR - 1) / MR, tile = MR * NR;
  for_each_item(G * Kg, get_num_threads(), [&](int64_t row, int) {
    const int64_t g = row / Kg, k = row % Kg, kb = k / NR, j = k % NR;
    for (int64_t t = 0; t < np; ++t) {
      const int64_t at = ((g * KB + kb) * TB + t / MR) * tile + (t % MR) * NR + j;
      T s = dw[row * np + t];
      for (int u = 0; u < nthr; ++u) s += acc[u * acc_size + at];
      dw[row * np + t] = s;
    }
  });
}

template <class T>
void conv_forward_implicit(const Conv3dParams& p, T* y, const T* x, const T* w, const T* b,
                           Activation act = Activation::none);
// dW_g[Kg, Cg·taps] += Σ_n dY_g(n) · col(n)ᵀ; db += Σ dY (either may be null).
template <class T>
void conv_backward_weight_implicit(const Conv3dParams& p, T* dw, T* db, const T* dy,
                                   const T* x);

// Backward-data of a unit-stride convolution whose padding is at most dil·(k-1) per side, as the
// implicit forward on dy with flipped, transposed filters (conv_implicit_data.cpp).
bool implicit_data_applies(const Conv3dParams& p);
Conv3dParams implicit_data_params(const Conv3dParams& p);  // that forward's geometry
// That forward's filters: w (K, Cg, KD, KH, KW) -> wt (C, Kg, KD, KH, KW), flipped on every
// axis and transposed per group.
template <class T>
void flip_transpose_filters(const Conv3dParams& p, const T* w, T* wt);
// Backward-data of a strided convolution (groups 1) as the implicit GEMM over its stride phases
// (conv_implicit_phases.cpp).
bool implicit_phases_apply(const Conv3dParams& p);
bool implicit_phases_pay(const Conv3dParams& p, int nthreads);  // what 'auto' takes
template <class T>
void conv_backward_data_phases(const Conv3dParams& p, T* dx, const T* dy, const T* w);
// Runs whichever of the two applies (implicit_data_applies, else implicit_phases_apply).
template <class T>
void conv_backward_data_implicit(const Conv3dParams& p, T* dx, const T* dy, const T* w);

}  // namespace cnnfast::cpu
