// conv2d_depthwise.cpp — the direct algorithm for one input channel per group (depthwise layers,
// any channel multiplier, stride and dilation) on the depthwise row kernels
// (kernels/conv2d_depthwise_rows.h). Each channel plane is zero-padded once into `stride_w`
// column phases (phase φ holds padded columns φ, φ + sw, ...), so every filter tap reads a
// unit-stride row of one phase at a fixed offset, and rows are widened to a multiple of the SIMD
// width (extra forward outputs go to a scratch row and are dropped).
//   forward: one item per (image, channel); tiles of 4 output rows x 24 outputs per output
//   channel of the group, then bias + activation
//   backward-data (unit stride, one output per group, padding within the dilated filter): the
//   forward on dy padded by ·dil - pad with the flipped filters
//   weight gradient: one item per channel, owning its group's dW rows and summing the images in
//   order (bitwise the same at any thread count); bias: channel_sums.h
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

// The phase planes of one channel: (stride_w, rows, wph), and each tap's offset into them.
struct PhaseGeo {
  int64_t sw, Qv, wph, rows, plane, span, ldi;
  std::vector<int64_t> off;  // (R, S): phase · plane + r · dil_h · wph + (s · dil_w) / sw
  PhaseGeo(const Conv2dParams& p, int64_t lanes)
      : sw(p.stride_w), Qv((p.Q + lanes - 1) / lanes * lanes),
        wph(Qv + (p.S - 1) * p.dil_w / sw), rows((p.P - 1) * p.stride_h + (p.R - 1) * p.dil_h + 1),
        plane(checked_mul(rows, wph)), span(checked_mul(sw, plane)), ldi(p.stride_h * wph),
        off(static_cast<size_t>(p.R * p.S)) {
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s)
        off[r * p.S + s] = s * p.dil_w % sw * plane + r * p.dil_h * wph + s * p.dil_w / sw;
  }
};

// xp (sw, rows, wph) = the plane x (H, W) padded by (pad_top, pad_left), split into column phases.
template <class T>
void pad_phases(const Conv2dParams& p, const PhaseGeo& g, const T* x, T* xp) {
  for (int64_t ph = 0; ph < g.sw; ++ph) {
    // Phase columns [lo, hi) hold x's columns (lo·sw + ph - pad_left, ...); the rest is padding.
    const int64_t lo = std::min(g.wph, std::max<int64_t>(0, (p.pad_left - ph + g.sw - 1) / g.sw));
    const int64_t hi =
        std::clamp<int64_t>((p.W + p.pad_left - ph + g.sw - 1) / g.sw, lo, g.wph);
    for (int64_t hp = 0; hp < g.rows; ++hp) {
      T* dst = xp + ph * g.plane + hp * g.wph;  // (wph,)
      const int64_t h = hp - p.pad_top;
      if (h < 0 || h >= p.H) {
        std::fill(dst, dst + g.wph, T(0));
        continue;
      }
      const T* src = x + h * p.W + lo * g.sw + ph - p.pad_left;  // column lo's element
      std::fill(dst, dst + lo, T(0));
      if (g.sw == 1) {
        std::memcpy(dst + lo, src, sizeof(T) * (hi - lo));
      } else if (g.sw == 2) {
        for (int64_t c = 0; c < hi - lo; ++c) dst[lo + c] = src[2 * c];
      } else {
        for (int64_t c = 0; c < hi - lo; ++c) dst[lo + c] = src[c * g.sw];
      }
      std::fill(dst + hi, dst + g.wph, T(0));
    }
  }
}

}  // namespace

bool depthwise_rows_apply(const Conv2dParams& p, bool weight_grad) {
  return p.Cg() == 1 && (p.Kg() == 1 || !direct_block_applies(p, weight_grad));
}

bool depthwise_rows_data_apply(const Conv2dParams& p) {
  return p.Cg() == 1 && p.Kg() == 1 && p.stride_h == 1 && p.stride_w == 1 &&
         p.pad_top <= (p.R - 1) * p.dil_h && p.pad_bottom <= (p.R - 1) * p.dil_h &&
         p.pad_left <= (p.S - 1) * p.dil_w && p.pad_right <= (p.S - 1) * p.dil_w;
}

template <class T>
void conv2d_forward_depthwise(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                              Activation act) {
  if (p.N * p.K * p.P * p.Q == 0) return;  // nothing to write
  const DepthwiseRowKernels<T>& kr = depthwise_row_kernels<T>();
  const PhaseGeo g(p, kr.lanes);
  const int64_t Kg = p.Kg(), taps = p.R * p.S, PQ = p.P * p.Q;
  const bool direct = g.Qv == p.Q;  // whole vectors: the tiles write y itself
  for_each_item(p.N * p.C, get_num_threads(), [&](int64_t it, int) {
    const int64_t n = it / p.C, c = it % p.C;
    T* xp = thread_scratch<T>(Scratch::col, g.span);                  // (sw, rows, wph)
    T* rows = thread_scratch<T>(Scratch::aux, kDepthwiseMR * g.Qv);   // (mr, Qv)
    pad_phases(p, g, x + it * p.H * p.W, xp);
    for (int64_t k = c * Kg; k < (c + 1) * Kg; ++k) {
      T* yk = y + (n * p.K + k) * PQ;  // (P, Q)
      for (int64_t i0 = 0; i0 < p.P; i0 += kDepthwiseMR) {
        const int64_t mr = std::min(kDepthwiseMR, p.P - i0);
        T* out = direct ? yk + i0 * p.Q : rows;
        for (int64_t q0 = 0; q0 < g.Qv; q0 += kDepthwiseNJ)
          kr.fwd(mr, std::min(kDepthwiseNJ, g.Qv - q0), xp + i0 * g.ldi + q0, g.ldi, taps,
                 g.off.data(), w + k * taps, out + q0, g.Qv);
        for (int64_t i = 0; i < mr; ++i) {
          T* yr = yk + (i0 + i) * p.Q;
          if (!direct) std::memcpy(yr, rows + i * g.Qv, sizeof(T) * p.Q);
          bias_act(yr, p.Q, b ? b[k] : T(0), act);
        }
      }
    }
  });
}

// dx[c] = the forward of dy[c], padded by ·dil - pad, with the flipped filter of channel c.
template <class T>
void conv2d_backward_data_depthwise(const Conv2dParams& p, T* dx, const T* dy, const T* w) {
  if (p.N * p.C * p.H * p.W == 0) return;  // nothing to write
  if (p.P * p.Q == 0) {  // every window lies in the padding: no gradient reaches x
    std::fill(dx, dx + p.N * p.C * p.H * p.W, T(0));
    return;
  }
  const int64_t taps = p.R * p.S;
  std::vector<T> wf(static_cast<size_t>(checked_mul(p.C, taps)));  // (C, R, S) flipped
  for (int64_t c = 0; c < p.C; ++c)
    std::reverse_copy(w + c * taps, w + (c + 1) * taps, wf.begin() + c * taps);
  const Conv2dParams t = conv2d_params(
      p.N, p.C, p.P, p.Q, p.C, 1, p.R, p.S, 1, 1, (p.R - 1) * p.dil_h - p.pad_top,
      (p.R - 1) * p.dil_h - p.pad_bottom, (p.S - 1) * p.dil_w - p.pad_left,
      (p.S - 1) * p.dil_w - p.pad_right, p.dil_h, p.dil_w, p.C);
  conv2d_forward_depthwise<T>(t, dx, dy, wf.data(), nullptr, Activation::none);
}

template <class T>
void conv2d_backward_weight_depthwise(const Conv2dParams& p, T* dw, T* db, const T* dy,
                                      const T* x) {
  if (db) accumulate_channel_sums(p.N, p.K, p.P * p.Q, db, dy);
  if (!dw || p.N * p.P * p.Q == 0) return;  // dW stays zero
  const DepthwiseRowKernels<T>& kr = depthwise_row_kernels<T>();
  const PhaseGeo g(p, kr.lanes);
  const int64_t Kg = p.Kg(), taps = p.R * p.S, PQ = p.P * p.Q;
  for_each_item(p.C, get_num_threads(), [&](int64_t c, int) {
    T* xp = thread_scratch<T>(Scratch::col, g.span);  // (sw, rows, wph) of channel c
    for (int64_t n = 0; n < p.N; ++n) {
      pad_phases(p, g, x + (n * p.C + c) * p.H * p.W, xp);
      for (int64_t k = c * Kg; k < (c + 1) * Kg; ++k)
        kr.bwd_weight(taps, g.off.data(), p.P, p.Q, dy + (n * p.K + k) * PQ, p.Q, xp, g.ldi,
                      dw + k * taps);
    }
  });
}

#define CNNFAST_INSTANTIATE(T)                                                                \
  template void conv2d_forward_depthwise<T>(const Conv2dParams&, T*, const T*, const T*,      \
                                            const T*, Activation);                            \
  template void conv2d_backward_data_depthwise<T>(const Conv2dParams&, T*, const T*, const T*); \
  template void conv2d_backward_weight_depthwise<T>(const Conv2dParams&, T*, T*, const T*,    \
                                                    const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
