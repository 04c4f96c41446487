// conv_implicit_phases.cpp — backward-data of a strided convolution (2-D or 3-D, groups 1) as an
// implicit GEMM over stride phases, with no column matrix and no col2im scatter (any stride and
// padding; unit stride is one phase). Along an axis of stride s, input position h = f + s·i (phase f) meets output h' = (h + pad − r·dil) / s through
// tap r only when s divides h + pad − r·dil, i.e. for the taps r of phase f, and then
//   dx[c, f + s·i] = Σ_{k, r ∈ taps(f)} W[k, c, r] · dy[k, i + e_r],   e_r = (f + pad − r·dil) / s.
// Each phase (fd, fh, fw) is a bank of the banked implicit GEMM: positions i over a zero-padded
// dy (by the largest reach of any e_r before and after), tap offsets from e_r, its own filters —
// a stride-1 convolution with a subset of the taps. This is also conv_transpose's forward.
#include <algorithm>
#include <vector>

#include "cnnfast/checked.h"
#include "cpu/conv_banked_implicit.h"
#include "cpu/conv_implicit.h"

namespace cnnfast::cpu {
namespace {

constexpr int64_t kBandBytes = int64_t(128) << 10;  // dx written by one block of every phase
constexpr int64_t kMaxPhaseTaps = 256;                // 'auto': np of the largest phase

// Along one axis: for each phase f, its taps r and their dy offsets e_r; the padding dy needs.
// Phases f < min(s, in) only: the others hold no input position (a stride of 10^9 over 16
// positions has 16 phases, not 10^9).
struct AxisPhases {
  std::vector<std::vector<int64_t>> taps, shift;  // [f] -> r, e_r
  std::vector<int64_t> count;                     // [f] -> input positions f, f + s, ... (>= 1)
  int64_t before = 0, after = 0;                  // dy padding
  AxisPhases(int64_t in, int64_t out, int64_t k, int64_t s, int64_t pad, int64_t dil)
      : taps(static_cast<size_t>(std::min(s, in))), shift(taps.size()), count(taps.size()) {
    for (int64_t f = 0; f < static_cast<int64_t>(count.size()); ++f) {
      count[f] = (in - f + s - 1) / s;
      for (int64_t r = 0; r < k; ++r) {
        const int64_t num = f + pad - r * dil;
        if (((num % s) + s) % s) continue;
        const int64_t e = (num - ((num % s) + s) % s) / s;  // exact
        taps[f].push_back(r), shift[f].push_back(e);
        before = std::max(before, -e);
        after = std::max(after, count[f] - 1 + e - (out - 1));
      }
    }
  }
};

}  // namespace

bool implicit_phases_apply(const Conv3dParams& p) { return p.groups == 1; }  // any stride, padding

// 'auto': strided, every phase has taps (else its positions are zero-filled tile by tile), at
// least one 16-channel block of dx channels, an image per thread, and each phase's filter panel
// (np x NR) small enough to stay in L1 while a tile runs — measured (2 threads, interleaved):
// np 256 (conv_transpose2d/3d k4 s2) 13-40 % faster than vol2col + GEMM + col2im, np 512 -6..+3 %,
// np 1024-2048 (ResNet's 256/512-channel stride-2 layers) 10-25 % slower.
bool implicit_phases_pay(const Conv3dParams& p, int nthreads) {
  if (!implicit_phases_apply(p) || (p.stride_d == 1 && p.stride_h == 1 && p.stride_w == 1) ||
      p.C < 16 || p.N < nthreads)
    return false;
  const AxisPhases ax[3] = {{p.D, p.OD, p.KD, p.stride_d, p.pad_front, p.dil_d},
                            {p.H, p.OH, p.KH, p.stride_h, p.pad_top, p.dil_h},
                            {p.W, p.OW, p.KW, p.stride_w, p.pad_left, p.dil_w}};
  int64_t most = 1;
  for (const AxisPhases& a : ax) {
    int64_t widest = 0;
    for (const auto& t : a.taps) {
      if (t.empty()) return false;
      widest = std::max(widest, static_cast<int64_t>(t.size()));
    }
    most *= widest;
  }
  return p.K * most <= kMaxPhaseTaps;
}

template <class T>
void conv_backward_data_phases(const Conv3dParams& p, T* dx, const T* dy, const T* w) {
  if (p.N == 0 || p.in_volume() == 0) return;  // dx is empty (an extent of 0: no phases)
  const ImplicitTileKernel<T>& kr = implicit_tile_kernel<T>(p.C);  // run_banked_implicit's
  const int64_t NR = kr.nr, C = p.C, K = p.K, CB = (C + NR - 1) / NR;
  const AxisPhases ax[3] = {{p.D, p.OD, p.KD, p.stride_d, p.pad_front, p.dil_d},
                            {p.H, p.OH, p.KH, p.stride_h, p.pad_top, p.dil_h},
                            {p.W, p.OW, p.KW, p.stride_w, p.pad_left, p.dil_w}};
  Conv3dParams g{};  // dy as the padded input
  g.N = p.N, g.C = K, g.D = p.OD, g.H = p.OH, g.W = p.OW, g.groups = 1;
  g.pad_front = ax[0].before, g.pad_back = ax[0].after, g.pad_top = ax[1].before;
  g.pad_bottom = ax[1].after, g.pad_left = ax[2].before, g.pad_right = ax[2].after;
  g.stride_d = g.stride_h = g.stride_w = 1;
  const PaddedVolume v(g);
  const int64_t sd = p.stride_d, sh = p.stride_h, sw = p.stride_w;
  const int64_t nh = ax[1].count.size(), nw = ax[2].count.size();  // phases per axis
  const int64_t B = static_cast<int64_t>(ax[0].count.size()) * nh * nw;

  // Per phase: positions (in: window origin in padded dy, out: flat dx offset), tap offsets, filters.
  std::vector<std::vector<int64_t>> in(B), out(B), off(B);
  std::vector<std::vector<T>> wp(B);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t f[3] = {b / (nh * nw), (b / nw) % nh, b % nw};
    for (int64_t i = 0; i < ax[0].count[f[0]]; ++i)
      for (int64_t j = 0; j < ax[1].count[f[1]]; ++j)
        for (int64_t q = 0; q < ax[2].count[f[2]]; ++q) {
          in[b].push_back(((i + ax[0].before) * v.Hp + j + ax[1].before) * v.Wp + q + ax[2].before);
          out[b].push_back(((f[0] + sd * i) * p.H + f[1] + sh * j) * p.W + f[2] + sw * q);
        }
    const auto &td = ax[0].taps[f[0]], &th = ax[1].taps[f[1]], &tw = ax[2].taps[f[2]];
    const int64_t taps = static_cast<int64_t>(td.size() * th.size() * tw.size()), np = K * taps;
    wp[b].assign(static_cast<size_t>(checked_mul(CB * np, NR)), T(0));  // (CB, np, NR)
    for (int64_t k = 0; k < K; ++k)
      for (size_t a = 0; a < td.size(); ++a)
        for (size_t r = 0; r < th.size(); ++r)
          for (size_t s = 0; s < tw.size(); ++s) {
            off[b].push_back(((k * v.Dp + ax[0].shift[f[0]][a]) * v.Hp + ax[1].shift[f[1]][r]) *
                                 v.Wp + ax[2].shift[f[2]][s]);
            const int64_t t = static_cast<int64_t>(off[b].size()) - 1;
            const int64_t tap = (td[a] * p.KH + th[r]) * p.KW + tw[s];
            for (int64_t c = 0; c < C; ++c)
              wp[b][((c / NR) * np + t) * NR + c % NR] = w[(k * C + c) * p.taps() + tap];
          }
  }
  // Banks are (block, phase), block-major: block rb holds positions [rb·cb, rb·cb + cb) of every
  // phase, so the phases that share dx's cache lines write them while they are in cache (a whole
  // image's dx, phase after phase, re-reads every line from memory once per phase).
  const int64_t MR = kr.mr;
  int64_t most = 0;
  for (int64_t b = 0; b < B; ++b) most = std::max(most, static_cast<int64_t>(in[b].size()));
  const int64_t cb = std::max(MR, kBandBytes / int64_t(sizeof(T)) / (C * B) / MR * MR);
  const int64_t blocks = std::max<int64_t>(1, (most + cb - 1) / cb);
  auto range = [&](int64_t bank, int64_t& u0, int64_t& u1) {
    const int64_t b = bank % B, count = static_cast<int64_t>(in[b].size());
    u0 = std::min(bank / B * cb, count), u1 = std::min(u0 + cb, count);
  };
  const int64_t volume = p.in_volume();
  run_banked_implicit(
      g, v, dy, blocks * B, 1, C,
      [&](int64_t bank) {
        const int64_t b = bank % B;
        int64_t u0, u1;
        range(bank, u0, u1);
        return ImplicitBank{in[b].data() + u0, u1 - u0, off[b].data(),
                            static_cast<int64_t>(off[b].size())};
      },
      [&](int64_t bank) { return static_cast<const T*>(wp[bank % B].data()); },
      [&](int64_t n, int64_t bank, const T* yb, int64_t ld) {
        int64_t u0, u1;
        range(bank, u0, u1);
        const int64_t* at = out[bank % B].data() + u0;
        for (int64_t c = 0; c < C; ++c) {
          T* dxc = dx + (n * C + c) * volume;
          const T* src = yb + (c / NR * ld) * NR + c % NR;  // src[u * NR]: position u0 + u
          for (int64_t u = 0; u < u1 - u0; ++u) dxc[at[u]] = src[u * NR];
        }
      });
}

#define CNNFAST_INSTANTIATE(T)                                                                  \
  template void conv_backward_data_phases<T>(const Conv3dParams&, T*, const T*, const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
