// conv2d_implicit.cpp — conv2d forward as an implicit GEMM: Y_g[Kg, PQ] = W_g · col[CgRS, PQ]
// without ever building col. Each (image, group) is copied once into a zero-padded plane stack;
// the tile microkernel then reads the column entries straight from it through a table of
// per-(c, r, s) offsets, so there is no im2col pass, no packing of the image and no column
// workspace — the costs that dominate small-channel layers (LeNet, first layers) in im2col+GEMM.
// Weights are packed once per call as (group, channel block, CgRS, NR). One (image, group) per
// work item; the epilogue (bias, ReLU) runs on each tile as it is stored.
#include "cpu/conv2d_implicit.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "cnnfast/checked.h"
#include "cnnfast/runtime.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"
#include "cpu/workspace.h"

namespace cnnfast::cpu {
namespace {
constexpr int64_t kMaxPackedWeightBytes = int64_t(512) << 10;  // one group's packed W, in L2
}  // namespace

bool implicit_forward_fits(const Conv2dParams& p, int nthreads) {
  const int64_t nr = 16, kb = (p.Kg() + nr - 1) / nr;
  const int64_t packed = kb * nr * p.Cg() * p.R * p.S * int64_t(sizeof(float));
  return p.N * p.groups >= nthreads && packed <= kMaxPackedWeightBytes;
}

template <class T>
void conv2d_forward_implicit(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                             Activation act) {
  const ImplicitTileKernel<T>& kr = implicit_tile_kernel<T>();
  const int64_t MR = kr.mr, NR = kr.nr;
  const int64_t Cg = p.Cg(), Kg = p.Kg(), G = p.groups, RS = p.R * p.S, np = Cg * RS;
  const int64_t KB = (Kg + NR - 1) / NR, PQ = p.P * p.Q;
  const PaddedPlanes pl(p, MR);
  if (MR * NR > kImplicitMaxTile || MR > kImplicitMaxRows)
    throw std::logic_error("implicit conv tile larger than its buffer");
  // wp is (G, KB, np, NR): wp[((g*KB + kb)*np + t)*NR + j] = W(g*Kg + kb*NR + j, t), 0 past Kg.
  std::vector<T> wp(static_cast<size_t>(checked_mul(checked_mul(G * KB, np), NR)), T(0));
  for (int64_t g = 0; g < G; ++g)
    for (int64_t k = 0; k < Kg; ++k)
      for (int64_t t = 0; t < np; ++t)
        wp[((g * KB + k / NR) * np + t) * NR + k % NR] = w[(g * Kg + k) * np + t];
  const std::vector<int64_t> off = tap_offsets(p, pl);  // off[t], t = (c, r, s)

  for_each_item(p.N * G, get_num_threads(), [&](int64_t it, int) {
    const int64_t n = it / G, g = it % G;
    T* xp = thread_scratch<T>(Scratch::col, pl.size);  // (Cg, Hp, Wp) + slack
    pad_planes(p, pl, x + (n * p.C + g * Cg) * p.H * p.W, xp);
    alignas(64) T tile[kImplicitMaxTile];  // (MR, NR)
    for (int64_t oh = 0; oh < p.P; ++oh)
      for (int64_t ow0 = 0; ow0 < p.Q; ow0 += MR) {
        const int64_t mr = std::min(MR, p.Q - ow0);
        const T* base = xp + oh * p.stride_h * pl.Wp + ow0 * p.stride_w;
        const T* xs[kImplicitMaxRows];  // row i: output position ow0 + i (past Q: slack, ignored)
        for (int64_t i = 0; i < MR; ++i) xs[i] = base + i * p.stride_w;
        for (int64_t kb = 0; kb < KB; ++kb) {
          kr.tile(np, xs, off.data(), wp.data() + (g * KB + kb) * np * NR, NR, tile, false);
          const int64_t k0 = g * Kg + kb * NR, nk = std::min(NR, Kg - kb * NR);
          for (int64_t j = 0; j < nk; ++j) {
            T* yr = y + (n * p.K + k0 + j) * PQ + oh * p.Q + ow0;  // row of channel k0 + j
            const T bk = b ? b[k0 + j] : T(0);
            for (int64_t i = 0; i < mr; ++i) {
              const T v = tile[i * NR + j] + bk;
              yr[i] = (act == Activation::relu && v < T(0)) ? T(0) : v;
            }
          }
        }
      }
  });
}

template void conv2d_forward_implicit<float>(const Conv2dParams&, float*, const float*,
                                             const float*, const float*, Activation);
template void conv2d_forward_implicit<double>(const Conv2dParams&, double*, const double*,
                                              const double*, const double*, Activation);
}  // namespace cnnfast::cpu
