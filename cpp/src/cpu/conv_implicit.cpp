// conv_implicit.cpp — convolution forward as an implicit GEMM: Y_g[Kg, out] = W_g · col[Cg·taps,
// out] without ever building col. Each (image, group) is copied once into a zero-padded volume
// stack; the tile microkernel then reads the column entries straight from it through a table of
// per-(c, a, r, s) offsets, so there is no im2col pass, no packing of the image and no column
// workspace — the costs that dominate small-channel layers (LeNet, first layers) in im2col+GEMM.
// Weights are packed once per call as (group, channel block, Cg·taps, NR). Threads take even
// ranges of (image, group, tile); tiles run along output rows; the epilogue (bias, ReLU) runs as
// each tile is stored.
#include "cpu/conv_implicit.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "cnnfast/runtime.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"
#include "cpu/workspace.h"

namespace cnnfast::cpu {
namespace {
constexpr int64_t kMaxPackedWeightBytes = int64_t(512) << 10;  // one group's packed W, in L2
}  // namespace

Conv3dParams as_conv3d(const Conv2dParams& p) {
  Conv3dParams q{};
  q.N = p.N, q.C = p.C, q.D = 1, q.H = p.H, q.W = p.W;
  q.K = p.K, q.KD = 1, q.KH = p.R, q.KW = p.S;
  q.OD = 1, q.OH = p.P, q.OW = p.Q;
  q.stride_d = 1, q.stride_h = p.stride_h, q.stride_w = p.stride_w;
  q.pad_front = 0, q.pad_back = 0, q.pad_top = p.pad_top, q.pad_bottom = p.pad_bottom;
  q.pad_left = p.pad_left, q.pad_right = p.pad_right;
  q.dil_d = 1, q.dil_h = p.dil_h, q.dil_w = p.dil_w;
  q.groups = p.groups;
  return q;
}

bool conv3d_is_pointwise(const Conv3dParams& p) {
  return p.taps() == 1 && p.stride_d == 1 && p.stride_h == 1 && p.stride_w == 1 &&
         conv3d_unpadded(p);
}

// Threads share an image's tiles where there are fewer (image, group) items than threads: one
// image, 2 threads, implicit / im2col+GEMM ms, forward: ResNet conv1 1.95 / 4.42, AlexNet conv1
// 1.10 / 2.46, 64 ch 3x3 stride 2 on 56x56 1.44 / 1.73, dilation 4 on 64x64 2.33 / 3.28;
// backward-data as the forward on dy, dilation 4: 2.60 / 4.21.
bool implicit_forward_fits(const Conv3dParams& p) {
  const int64_t nr = 16, kb = (p.Kg() + nr - 1) / nr;
  const int64_t packed = kb * nr * p.Cg() * p.taps() * int64_t(sizeof(float));
  return packed <= kMaxPackedWeightBytes;
}

template <class T>
void conv_forward_implicit(const Conv3dParams& p, T* y, const T* x, const T* w, const T* b,
                           Activation act) {
  const int64_t Cg = p.Cg(), Kg = p.Kg(), G = p.groups, np = Cg * p.taps();
  const ImplicitTileKernel<T>& kr = implicit_tile_kernel<T>(Kg, np);
  const int64_t MR = kr.mr, NR = kr.nr;
  if (MR * NR > kImplicitMaxTile || MR > kImplicitMaxRows)
    throw std::logic_error("implicit conv tile larger than its buffer");
  const int64_t KB = (Kg + NR - 1) / NR, out = p.out_volume(), in = p.in_volume();
  const PaddedVolume v(p);
  // wp is (G, KB, np, NR): wp[((g*KB + kb)*np + t)*NR + j] = W(g*Kg + kb*NR + j, t), 0 past Kg.
  std::vector<T> wp(static_cast<size_t>(checked_mul(checked_mul(G * KB, np), NR)), T(0));
  for (int64_t g = 0; g < G; ++g)
    for (int64_t k = 0; k < Kg; ++k)
      for (int64_t t = 0; t < np; ++t)
        wp[((g * KB + k / NR) * np + t) * NR + k % NR] = w[(g * Kg + k) * np + t];
  const std::vector<int64_t> off = tap_offsets(p, v);  // off[t], t = (c, a, r, s)

  // Work is split evenly over (image, group, tile) triples, contiguous ranges per thread: with
  // fewer (image, group) items than threads the threads share an image's tiles, each padding the
  // image into its own scratch (one image, ResNet conv1, 2 threads: see implicit_forward_fits).
  const int64_t tiles = (out + MR - 1) / MR;  // per (image, group)
  const int64_t units = checked_mul(p.N * G, tiles);
  auto run = [&](int64_t u0, int64_t u1) {
    if (u0 >= u1) return;  // nothing (also: no output positions, tiles 0)
    T* xp = thread_scratch<T>(Scratch::col, v.size);  // (Cg, Dp, Hp, Wp) + slack
    alignas(64) T tile[kImplicitMaxTile];  // (MR, NR)
    // A tile takes MR consecutive output positions in raster order, across row ends (y's
    // positions are contiguous per channel), so a row whose width is no multiple of MR leaves
    // no part-empty tile behind: LeNet C3's 10x10 outputs take 17 tiles, not 20.
    auto advance = [&](int64_t& d, int64_t& h, int64_t& w_, int64_t by) {
      for (w_ += by; w_ >= p.OW; w_ -= p.OW)
        if (++h == p.OH) h = 0, ++d;
    };
    for (int64_t it = u0 / tiles; it * tiles < u1; ++it) {  // the (image, group) items met
      const int64_t n = it / G, g = it % G;
      const int64_t t0 = std::max(u0, it * tiles) - it * tiles;
      const int64_t t1 = std::min(u1, (it + 1) * tiles) - it * tiles;
      pad_volume(p, v, x + (n * p.C + g * Cg) * in, xp);
      int64_t pos = t0 * MR;  // position pos = (od, oh, ow)
      int64_t od = pos / (p.OH * p.OW), oh = pos / p.OW % p.OH, ow = pos % p.OW;
      for (int64_t t = t0; t < t1; ++t, pos += MR, advance(od, oh, ow, MR)) {
        const int64_t mr = std::min(MR, out - pos);
        const T* xs[kImplicitMaxRows];  // row i: position pos + i (past the image: its last again)
        for (int64_t i = 0, d = od, h = oh, w_ = ow; i < MR; ++i) {
          xs[i] = xp + (d * p.stride_d * v.Hp + h * p.stride_h) * v.Wp + w_ * p.stride_w;
          if (i + 1 < mr) advance(d, h, w_, 1);
        }
        for (int64_t kb = 0; kb < KB; ++kb) {
          kr.tile(np, xs, off.data(), wp.data() + (g * KB + kb) * np * NR, NR, tile, false);
          const int64_t k0 = g * Kg + kb * NR, nk = std::min(NR, Kg - kb * NR);
          kr.store_channels(mr, nk, tile, b ? b + k0 : nullptr, act == Activation::relu,
                            y + (n * p.K + k0) * out + pos, out);  // channels k0.., positions pos..
        }
      }
    }
  };
  const int nt = static_cast<int>(std::min<int64_t>(get_num_threads(), units));
  if (nt <= 1) return run(0, units);
  parallel_region(nt, [&](int t, int n) {  // (inside another region: one range, n = 1)
    int64_t u0, u1;
    static_range(units, t, n, u0, u1);
    run(u0, u1);
  });
}

template void conv_forward_implicit<float>(const Conv3dParams&, float*, const float*,
                                           const float*, const float*, Activation);
template void conv_forward_implicit<double>(const Conv3dParams&, double*, const double*,
                                            const double*, const double*, Activation);

}  // namespace cnnfast::cpu
