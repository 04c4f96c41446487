// conv2d_direct_block.cpp — the direct algorithm at unit stride and dilation, any groups (one
// channel per group: conv2d_depthwise.cpp): register-blocked microkernels
// (kernels/conv2d_direct_block.h) over zero-padded planes whose rows are widened to a multiple
// of the SIMD width (extra forward outputs are computed and dropped; the weight gradient reads
// dy's row tail masked). Small-K layers like LeNet's C1 (1 -> 6 channels) fill the kernels'
// 3-channel x 32-output tiles where the implicit GEMM's 16-channel tiles run 6/16 full.
//   forward: one item per (image, group); rows of 3 channels x up to 32 outputs (6 x 16 for
//   narrow rows), then bias + activation
//   backward-data: the forward kernels on dy padded by R-1-pad with flipped, transposed filters
//   weight gradient: one item per (input channel, filter row), owning those dW entries (of its
//   group's output channels) and summing the images in order (bitwise the same at any thread
//   count); bias: channel_sums.h.
#include <algorithm>
#include <cstring>
#include <vector>

#include "cnnfast/checked.h"
#include "cnnfast/runtime.h"
#include "cpu/channel_sums.h"
#include "cpu/conv2d_direct.h"
#include "cpu/dispatch.h"
#include "cpu/epilogue.h"
#include "cpu/parallel.h"
#include "cpu/workspace.h"

namespace cnnfast::cpu {
namespace {

struct BlockGeo {
  int64_t Qv, Wv, Hp, plane, taps;
  BlockGeo(const Conv2dParams& p, int64_t lanes)
      : Qv((p.Q + lanes - 1) / lanes * lanes), Wv(Qv + p.S - 1),
        Hp(p.H + p.pad_top + p.pad_bottom), plane(Hp * Wv), taps(p.Cg() * p.R * p.S) {}
};

}  // namespace

bool direct_block_applies(const Conv2dParams& p, bool weight_grad) {
  return p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 && p.dil_w == 1 &&
         (!weight_grad || p.S <= kDirectBlockMaxS);
}

bool direct_block_data_applies(const Conv2dParams& p) {
  return direct_block_applies(p, false) && p.pad_top < p.R && p.pad_bottom < p.R &&
         p.pad_left < p.S && p.pad_right < p.S;
}

// dx = the forward convolution of dy, padded by R-1-pad (S-1-pad), with the flipped filters
// transposed within each group to (C, Kg, R, S):
// dx[c][h][w] = Σ_{k in c's group, r, s} w[k][c % Cg][R-1-r][S-1-s] · dyp[k][h+r][w+s].
template <class T>
void conv2d_backward_data_direct_block(const Conv2dParams& p, T* dx, const T* dy, const T* w) {
  if (p.N * p.C * p.H * p.W == 0) return;  // nothing to write (and no valid transposed shape)
  const int64_t Cg = p.Cg(), Kg = p.Kg();
  std::vector<T> wt(static_cast<size_t>(checked_mul(p.K, Cg * p.R * p.S)));  // (C, Kg, R, S)
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t cc = 0; cc < Cg; ++cc) {
      const int64_t c = k / Kg * Cg + cc, kk = k % Kg;  // global input, group-local output
      for (int64_t r = 0; r < p.R; ++r)
        for (int64_t s = 0; s < p.S; ++s)
          wt[((c * Kg + kk) * p.R + (p.R - 1 - r)) * p.S + (p.S - 1 - s)] =
              w[((k * Cg + cc) * p.R + r) * p.S + s];
    }
  const Conv2dParams t = conv2d_params(p.N, p.K, p.P, p.Q, p.C, Kg, p.R, p.S, 1, 1,
                                       p.R - 1 - p.pad_top, p.R - 1 - p.pad_bottom,
                                       p.S - 1 - p.pad_left, p.S - 1 - p.pad_right, 1, 1, p.groups);
  conv2d_forward_direct_block<T>(t, dx, dy, wt.data(), nullptr, Activation::none);
}

template <class T>
void conv2d_forward_direct_block(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                                 Activation act) {
  const DirectBlockKernels<T>& kr = direct_block_kernels<T>();
  const BlockGeo g(p, kr.lanes);
  // Narrow rows (one call covers the row) take 6-channel tiles, wide rows 3-channel ones.
  const int64_t KB = g.Qv <= kDirectBlockNJNarrow ? kDirectBlockNKNarrow : kDirectBlockNK;
  const int64_t Cg = p.Cg(), Kg = p.Kg();
  for_each_item(p.N * p.groups, get_num_threads(), [&](int64_t it, int) {
    const int64_t n = it / p.groups, gr = it % p.groups;
    T* xp = thread_scratch<T>(Scratch::col, checked_mul(Cg, g.plane));  // (Cg, Hp, Wv)
    T* rows = thread_scratch<T>(Scratch::aux, KB * g.Qv);              // (nk, Qv)
    pad_planes(p, Cg, g.Wv, x + (n * p.C + gr * Cg) * p.H * p.W, xp);
    for (int64_t i = 0; i < p.P; ++i) {
      // Only the filter rows [r0, r1) meet rows of x rather than its zero padding (the
      // backward-data's dy is padded by R-1-pad: LeNet C3's 10 rows to 18).
      const int64_t r0 = std::clamp<int64_t>(p.pad_top - i, 0, p.R);
      const int64_t r1 = std::clamp<int64_t>(p.pad_top + p.H - i, r0, p.R);
      for (int64_t k0 = gr * Kg; k0 < (gr + 1) * Kg; k0 += KB) {
        const int64_t nk = std::min(KB, (gr + 1) * Kg - k0);
        for (int64_t q0 = 0; q0 < g.Qv; q0 += kDirectBlockNJ)
          kr.fwd(nk, std::min(kDirectBlockNJ, g.Qv - q0), xp + (i + r0) * g.Wv + q0, g.plane,
                 g.Wv, Cg, r1 - r0, p.S, w + k0 * g.taps + r0 * p.S, g.taps, p.R * p.S,
                 rows + q0, g.Qv);
        for (int64_t k = 0; k < nk; ++k) {
          T* yr = y + ((n * p.K + k0 + k) * p.P + i) * p.Q;  // (Q,)
          std::memcpy(yr, rows + k * g.Qv, sizeof(T) * p.Q);
          bias_act(yr, p.Q, b ? b[k0 + k] : T(0), act);
        }
      }
    }
  });
}

template <class T>
void conv2d_backward_weight_direct_block(const Conv2dParams& p, T* dw, T* db, const T* dy,
                                         const T* x) {
  if (db) accumulate_channel_sums(p.N, p.K, p.P * p.Q, db, dy);
  if (!dw) return;
  const DirectBlockKernels<T>& kr = direct_block_kernels<T>();
  const BlockGeo g(p, kr.lanes);
  const int64_t PQ = p.P * p.Q;
  // One item per (input channel c, filter row r): it owns dW[k, c % Cg, r, :] for the output
  // channels k of c's group and sums the images in order, so the result is the same at any
  // thread count. Its padded plane is channel c alone.
  const int64_t Cg = p.Cg(), Kg = p.Kg();
  for_each_item(p.C * p.R, get_num_threads(), [&](int64_t it, int) {
    const int64_t c = it / p.R, r = it % p.R, kg0 = c / Cg * Kg;
    T* xp = thread_scratch<T>(Scratch::col, g.plane);  // (Hp, Wv) of channel c
    for (int64_t n = 0; n < p.N; ++n) {
      pad_planes(p, 1, g.Wv, x + (n * p.C + c) * p.H * p.W, xp);
      for (int64_t k0 = kg0; k0 < kg0 + Kg; k0 += kDirectBlockNKW)
        kr.bwd_weight(std::min(kDirectBlockNKW, kg0 + Kg - k0), p.P, p.Q,
                      dy + (n * p.K + k0) * PQ, PQ, p.Q, xp + r * g.Wv, g.Wv, p.S,
                      dw + k0 * g.taps + (c % Cg * p.R + r) * p.S, g.taps);
    }
  });
}

#define CNNFAST_INSTANTIATE(T)                                                                \
  template void conv2d_forward_direct_block<T>(const Conv2dParams&, T*, const T*, const T*,   \
                                               const T*, Activation);                         \
  template void conv2d_backward_weight_direct_block<T>(const Conv2dParams&, T*, T*, const T*, \
                                                       const T*);                             \
  template void conv2d_backward_data_direct_block<T>(const Conv2dParams&, T*, const T*, const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
