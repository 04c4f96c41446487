// conv2d_depthwise.cpp — the direct algorithm for one input channel per group (depthwise layers,
// any channel multiplier, stride and dilation) on the depthwise row kernels
// (kernels/conv2d_depthwise_rows.h). Each channel plane is zero-padded once into `stride_w`
// column phases (phase φ holds padded columns φ, φ + sw, ...), so every filter tap reads a
// unit-stride row of one phase at a fixed offset, and rows are widened to a multiple of the SIMD
// width (extra forward outputs go to a scratch row and are dropped).
//   forward: one item per (image, channel); tiles of 4 output rows x 24 outputs per output
//   channel of the group, then bias + activation
//   backward-data: per (image, channel), the group's dy planes padded once into one buffer;
//   each stride phase of dx is the forward row kernel over the taps that reach it (DataGeo)
//   weight gradient: one item per channel, owning its group's dW rows and summing the images in
//   order (bitwise the same at any thread count); bias: channel_sums.h
#include <algorithm>
#include <cstdint>
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

// dst (rows, width) = the plane src (P, Q) placed at row -i_lo, column -j_lo (i_lo, j_lo <= 0),
// zeros around it.
template <class T>
void pad_plane(const T* src, int64_t P, int64_t Q, int64_t i_lo, int64_t j_lo, int64_t rows,
               int64_t width, T* dst) {
  for (int64_t i = 0; i < rows; ++i) {
    T* d = dst + i * width;
    const int64_t row = i + i_lo;
    if (row < 0 || row >= P) {
      std::fill(d, d + width, T(0));
      continue;
    }
    std::fill(d, d - j_lo, T(0));
    std::memcpy(d - j_lo, src + row * Q, sizeof(T) * Q);
    std::fill(d - j_lo + Q, d + width, T(0));
  }
}

// out[sw·j + m] = src[m·ld + j] for sw·j + m < W: one dx row from its sw column phases.
template <class T>
void interleave_columns(int64_t sw, int64_t W, const T* src, int64_t ld, T* out) {
  if (sw == 1) {
    std::memcpy(out, src, sizeof(T) * W);
  } else if (sw == 2) {
    const T* s1 = src + ld;
    const int64_t half = W / 2;
    for (int64_t j = 0; j < half; ++j) out[2 * j] = src[j], out[2 * j + 1] = s1[j];
    if (W % 2) out[W - 1] = src[half];
  } else {
    for (int64_t x = 0; x < W; ++x) out[x] = src[x % sw * ld + x / sw];
  }
}

}  // namespace

bool depthwise_rows_apply(const Conv2dParams& p, bool weight_grad) {
  return p.Cg() == 1 && (p.Kg() == 1 || !direct_block_applies(p, weight_grad));
}

bool depthwise_rows_data_apply(const Conv2dParams& p) {
  return p.Cg() == 1;
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

// The stride phases of the input gradient. Padded input row a + sh·u (a < sh) gets dy row
// u - d_r from each filter row r with r·dil_h ≡ a (mod sh), d_r = (r·dil_h - a) / sh; columns
// alike with (b, s, e_s). So each phase (a, b) is a unit-stride correlation of dy with the taps
// (group output kk, r, s) that reach it: the forward row kernel on dy's planes padded once into
// one buffer of Kg planes (rows from i_lo, columns from j_lo). Phases no tap reaches get zeros.
struct DataPhase {
  int64_t a, b, u0, nu, v0, nv, nvv;  // outputs: padded rows a + sh·u, u in [u0, u0 + nu), ...
  int64_t t0, t1;                     // its taps [t0, t1) in DataGeo::off / widx
  int64_t dmax, dmin, emax, emin;     // the reach of its taps in dy rows / columns
};

struct DataGeo {
  int64_t i_lo = 0, j_lo = 0, rows = 0, width = 0, plane = 0, span = 0, nvv_max = 0;
  std::vector<DataPhase> phases;
  std::vector<int64_t> off, widx;  // per tap: offset into the dy buffer from the phase's
                                   // first output, and the weight index in the group's (Kg, R, S)
  DataGeo(const Conv2dParams& p, int64_t lanes) {
    const int64_t sh = p.stride_h, sw = p.stride_w, Kg = p.Kg();
    const auto first = [](int64_t lo, int64_t a, int64_t st) {  // least u >= 0: a + st·u >= lo
      return lo <= a ? 0 : (lo - a + st - 1) / st;
    };
    int64_t row_end = p.P, col_end = p.Q;
    for (int64_t a = 0; a < sh; ++a)
      for (int64_t b = 0; b < sw; ++b) {
        DataPhase ph{a, b, first(p.pad_top, a, sh), 0, first(p.pad_left, b, sw), 0, 0,
                     0, 0, -1, INT64_MAX, -1, INT64_MAX};  // taps: below
        ph.nu = std::max<int64_t>(0, first(p.pad_top + p.H, a, sh) - ph.u0);
        ph.nv = std::max<int64_t>(0, first(p.pad_left + p.W, b, sw) - ph.v0);
        ph.nvv = (ph.nv + lanes - 1) / lanes * lanes;
        for (int64_t r = 0; r < p.R; ++r)
          for (int64_t s = 0; s < p.S; ++s)
            if (r * p.dil_h % sh == a && s * p.dil_w % sw == b) {
              const int64_t d = (r * p.dil_h - a) / sh, e = (s * p.dil_w - b) / sw;
              ph.dmax = std::max(ph.dmax, d), ph.dmin = std::min(ph.dmin, d);
              ph.emax = std::max(ph.emax, e), ph.emin = std::min(ph.emin, e);
            }
        if (ph.nu == 0 || ph.nv == 0) continue;  // no input position in this phase
        if (ph.dmax >= 0) {
          i_lo = std::min(i_lo, ph.u0 - ph.dmax), j_lo = std::min(j_lo, ph.v0 - ph.emax);
          row_end = std::max(row_end, ph.u0 + ph.nu - ph.dmin);
          col_end = std::max(col_end, ph.v0 + ph.nvv - ph.emin);
        }
        nvv_max = std::max(nvv_max, ph.nvv);
        phases.push_back(ph);
      }
    rows = row_end - i_lo, width = col_end - j_lo;
    plane = checked_mul(rows, width), span = checked_mul(Kg, plane);
    for (DataPhase& ph : phases) {
      ph.t0 = static_cast<int64_t>(off.size());
      if (ph.dmax >= 0)
        for (int64_t kk = 0; kk < Kg; ++kk)
          for (int64_t r = 0; r < p.R; ++r)
            for (int64_t s = 0; s < p.S; ++s)
              if (r * p.dil_h % sh == ph.a && s * p.dil_w % sw == ph.b) {
                const int64_t d = (r * p.dil_h - ph.a) / sh, e = (s * p.dil_w - ph.b) / sw;
                off.push_back(kk * plane + (ph.u0 - d - i_lo) * width + ph.v0 - e - j_lo);
                widx.push_back((kk * p.R + r) * p.S + s);
              }
      ph.t1 = static_cast<int64_t>(off.size());
    }
  }
};

// dx (N, C, H, W) from dy (N, K, P, Q) and w (K, 1, R, S): one item per (image, channel).
template <class T>
void conv2d_backward_data_depthwise(const Conv2dParams& p, T* dx, const T* dy, const T* w) {
  if (p.N * p.C * p.H * p.W == 0) return;  // nothing to write
  if (p.P * p.Q == 0) {  // every window lies in the padding: no gradient reaches x
    std::fill(dx, dx + p.N * p.C * p.H * p.W, T(0));
    return;
  }
  const DepthwiseRowKernels<T>& kr = depthwise_row_kernels<T>();
  const DataGeo g(p, kr.lanes);
  const int64_t Kg = p.Kg(), taps = Kg * p.R * p.S, HW = p.H * p.W;
  const int64_t sh = p.stride_h, sw = p.stride_w;
  for_each_item(p.N * p.C, get_num_threads(), [&](int64_t it, int) {
    const int64_t n = it / p.C, c = it % p.C;
    T* buf = thread_scratch<T>(Scratch::col, g.span);  // (Kg, rows, width)
    // (sw, mr, nvv_max): a row tile of each column phase, by its first dx column (< sw)
    T* rows = thread_scratch<T>(Scratch::aux, sw * kDepthwiseMR * g.nvv_max + taps);
    T* wt = rows + sw * kDepthwiseMR * g.nvv_max;  // (taps,) the weights in tap order
    T* dxc = dx + it * HW;                         // (H, W)
    for (int64_t kk = 0; kk < Kg; ++kk)
      pad_plane(dy + (n * p.K + c * Kg + kk) * p.P * p.Q, p.P, p.Q, g.i_lo, g.j_lo, g.rows,
                g.width, buf + kk * g.plane);
    const T* wc = w + c * Kg * p.R * p.S;  // (Kg, R, S)
    for (int64_t t = 0; t < static_cast<int64_t>(g.widx.size()); ++t) wt[t] = wc[g.widx[t]];
    // One row phase at a time (its column phases are consecutive in g.phases): each tile of
    // its rows is computed for every column phase, then each dx row is written once, in order.
    for (size_t f0 = 0, f1 = 0; f0 < g.phases.size(); f0 = f1) {
      while (f1 < g.phases.size() && g.phases[f1].a == g.phases[f0].a) ++f1;
      const DataPhase& ra = g.phases[f0];
      const int64_t h0 = ra.a + sh * ra.u0 - p.pad_top;
      const bool direct = sw == 1 && ra.nvv == ra.nv && ra.t1 > ra.t0;  // tiles write dx
      for (int64_t u = 0; u < ra.nu; u += kDepthwiseMR) {
        const int64_t mr = std::min(kDepthwiseMR, ra.nu - u);
        for (size_t f = f0; f < f1; ++f) {
          const DataPhase& ph = g.phases[f];
          const int64_t m = ph.b + sw * ph.v0 - p.pad_left;  // its first dx column
          T* out = direct ? dxc + (h0 + sh * u) * p.W : rows + m * kDepthwiseMR * g.nvv_max;
          const int64_t ldo = direct ? sh * p.W : g.nvv_max;
          if (ph.t1 == ph.t0) {  // no tap reaches this phase
            for (int64_t i = 0; i < mr; ++i) std::fill(out + i * ldo, out + i * ldo + ph.nv, T(0));
          } else {
            for (int64_t v = 0; v < ph.nvv; v += kDepthwiseNJ)
              kr.fwd(mr, std::min(kDepthwiseNJ, ph.nvv - v), buf + u * g.width + v, g.width,
                     ph.t1 - ph.t0, g.off.data() + ph.t0, wt + ph.t0, out + v, ldo);
          }
        }
        if (direct) continue;
        for (int64_t i = 0; i < mr; ++i)
          interleave_columns(sw, p.W, rows + i * g.nvv_max, kDepthwiseMR * g.nvv_max,
                             dxc + (h0 + sh * (u + i)) * p.W);
      }
    }
  });
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
