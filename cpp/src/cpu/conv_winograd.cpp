// conv_winograd.cpp — Winograd F(m x m, 3x3), m = 2 or 4 (Lavin & Gray 2015), for a 3x3 spatial
// kernel at unit spatial stride, 2-D (D = KD = 1) and 3-D. α = m + 2. Per item (image, group,
// block of output tile rows, which may run across dilation phases):
//   V[ξ][c][t] = (Bᵀ d B)[ξ] for each α x α input tile t of one input depth slice,  ξ < α²
//   M[ξ]       = Σ_kd U[ξ][kd] · V[ξ](slice od·sd − pad + kd·dd)  — α² GEMMs per output slice;
//                at depth dilation 1 the window's slices sit side by side, so each is one
//                (Kg x KD·Cg) · (KD·Cg x tiles) GEMM, U = G g Gᵀ per (k, c, kd)
//   y tile     = act(Aᵀ M A + bias) — the m x m output, clipped at the edges.
// The planes are zero-padded (extra bottom/right so every α x α tile is inside) and stored as m
// column-phase planes so the row transforms are unit-stride (kernels/winograd_*). Each input
// slice is transformed once per block into a ring of slots (at depth dilation 1 written twice,
// at s mod span and span + s mod span, so any window of consecutive slices is one B matrix).
// Dilation d in the plane splits it into d_h x d_w phases (space-to-batch, as for atrous
// convolution): the outputs at rows b + d·u read only the input rows b − pad + d·v, so phase b
// is an undilated 'valid' 3x3 convolution of that gathered sub-plane. The gather is the plane
// build and the scatter is the output copy: a phase costs no extra pass over memory.
// Backward-data is the forward of dy with the flipped, channel-transposed filter, the same
// dilation and padding dil·(k−1) − pad (unit stride): dx[c] = Σ_k dy[k] ⋆ flip(w[k, c]).
#include "cpu/conv_winograd.h"

#include <algorithm>
#include <vector>

#include "cnnfast/checked.h"
#include "cnnfast/runtime.h"
#include "cpu/conv_implicit.h"
#include "cpu/dispatch.h"
#include "cpu/epilogue.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "cpu/workspace.h"

namespace cnnfast::cpu {
namespace {

constexpr int64_t kTileBudgetElems = int64_t(1) << 20;  // V + M per thread (elements)
// Extra elements between the 16 ξ slices of V and of M: with power-of-two planes (64x64: 512
// tiles a block, 64 channels) the slices sat 128 KiB apart and the 16 streams of a tile's
// transform fought over the same cache sets (8x64x64x64 forward 1.5x slower per position than
// 60x60 or 66x66).
constexpr int64_t kSliceSkew = 16;

// u (α x α, α = m + 2) = G g Gᵀ for one 3x3 filter g: G's rows for F(2x2,3x3) are
// [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1], for F(4x4,3x3) [¼ 0 0; -⅙ -⅙ -⅙; -⅙ ⅙ -⅙; 1/24 1/12 ⅙;
// 1/24 -1/12 ⅙; 0 0 1].
template <class T>
void filter_g(const T* g, int s, int m, T* out, int so) {  // out[0..α) = G g[0..3) (stride s, so)
  const T g0 = g[0], g1 = g[s], g2 = g[2 * s];
  if (m == 2) {
    out[0] = g0;
    out[so] = T(0.5) * (g0 + g1 + g2);
    out[2 * so] = T(0.5) * (g0 - g1 + g2);
    out[3 * so] = g2;
  } else {  // products with the rounded reciprocals: divisions made VGG's 256-channel transform
             // per call several ms
    const T r6 = T(1) / T(6), r12 = T(1) / T(12), r24 = T(1) / T(24);
    out[0] = T(0.25) * g0;
    out[so] = -r6 * (g0 + g1 + g2);
    out[2 * so] = -r6 * (g0 - g1 + g2);
    out[3 * so] = r24 * g0 + r12 * g1 + r6 * g2;
    out[4 * so] = r24 * g0 - r12 * g1 + r6 * g2;
    out[5 * so] = g2;
  }
}

template <class T>
void transform_filter(const T* g, int m, T* u) {  // u: α x α, row-major
  const int a = m + 2;
  T t[6][3];  // G g
  for (int j = 0; j < 3; ++j) filter_g(g + j, 3, m, &t[0][j], 3);
  for (int i = 0; i < a; ++i) filter_g(&t[i][0], 1, m, u + i * a, 1);  // (G g) Gᵀ
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// First and one-past-last destination index v in [0, n) whose source b - pad + dil·v lies in
// [0, len): the phase's gather along one axis.
void phase_range(int64_t b, int64_t pad, int64_t dil, int64_t len, int64_t n, int64_t* lo,
                 int64_t* hi) {
  const int64_t off = b - pad;  // source of v = 0
  *lo = off >= 0 ? 0 : ceil_div(-off, dil);
  *hi = off > len - 1 ? 0 : std::min(n, (len - 1 - off) / dil + 1);
  if (*hi < *lo) *hi = *lo;
}

// One dilation phase of the output plane: rows bh + dh·u (u < P), columns bw + dw·j (j < Q). Its
// padded plane's row v, column j hold x[h0 + dh·v][w0 + dw·j] for v in [v0, v1), j in [j0, j1)
// (zero elsewhere); th x tw tiles of m x m cover it, read from m·th + 2 rows and m·(tw + 1)
// columns.
struct Phase {
  int64_t bh = 0, bw = 0, P = 0, Q = 0, h0 = 0, w0 = 0, v0 = 0, v1 = 0, j0 = 0, j1 = 0;
  Phase() = default;
  Phase(const Conv3dParams& p, int64_t bh_, int64_t bw_, int64_t m, int64_t th, int64_t tw)
      : bh(bh_), bw(bw_), P(ceil_div(p.OH - bh_, p.dil_h)), Q(ceil_div(p.OW - bw_, p.dil_w)),
        h0(bh_ - p.pad_top), w0(bw_ - p.pad_left) {
    phase_range(bh, p.pad_top, p.dil_h, p.H, m * th + 2, &v0, &v1);
    phase_range(bw, p.pad_left, p.dil_w, p.W, m * (tw + 1), &j0, &j1);
  }
};

}  // namespace

bool winograd_applies(const Conv3dParams& p, bool backward_data) {
  const bool shape = p.KH == 3 && p.KW == 3 && p.stride_h == 1 && p.stride_w == 1;
  return shape && (!backward_data || implicit_data_applies(p));
}

// Winograd pays off once its GEMMs have real depth (at least 16 channels on both sides) and the
// batch has tiles enough to amortise the per-call filter transform: at least 64 2x2 tiles over
// all images (blocks run across images; 2 threads, batch 16, 3x3, interleaved Winograd F2 vs the
// GEMM paths, ms: 256 ch on 7x7 6.4 vs 8.3 forward, 7.2 vs 8.4 backward-data; 512 ch on 4x4 15.7
// vs 18.1 and 17.6 vs 18.9; 128 ch on 8x8 2.2 vs 3.4 and 2.7 vs 3.2). The side it reads must not
// be the deeper one: its input transform runs over the read channels, so forward wants Kg >= Cg
// and backward-data Kg <= Cg (torch/cnnfast, interleaved, 2 threads: forward 64->16 on 56x56
// Winograd 0.30 vs implicit 1.05, 128->32 0.38 vs 0.94; dx 64->128 on 32x32 0.60 vs GEMM 0.85,
// 128->256 on 16x16 0.72 vs 0.89; 64->64 on 28x28 1.09 vs 0.79), and 32+ channels on the deeper
// side (16->16 on 56x56: forward 0.74 vs implicit 0.98).
bool winograd_pays(const Conv3dParams& p, bool backward_data) {
  const int64_t Cg = p.Cg(), Kg = p.Kg();
  const int64_t tiles = p.N * p.dil_h * ceil_div(ceil_div(p.OH, p.dil_h), 2) * p.dil_w *
                        ceil_div(ceil_div(p.OW, p.dil_w), 2);
  return winograd_applies(p, backward_data) && Cg >= 16 && Kg >= 16 &&
         std::max(Cg, Kg) >= 32 && tiles >= 64 && (backward_data ? Kg <= Cg : Kg >= Cg);
}

// F(4x4,3x3) from 48 of its tiles an image up (all phases): 28x28 planes and larger. Below, a
// block's GEMMs get too few columns (2 threads, batch 16, interleaved F2 vs F4 ms: 256 ch on 8x8
// 6.4 vs 16.4, 64 ch on 20x20 2.8 vs 3.3, 64 ch on 28x28 6.2 vs 6.3, 128 ch on 28x28 18.3 vs 17.3;
// 32x64x56x56 49.4 vs 43.3, 8x256x56x56 97.7 vs 82.9, 8x64x64x64 dilation 4 15.5 vs 14.5).
int winograd_tile(const Conv3dParams& p) {
  const int64_t th = ceil_div(ceil_div(p.OH, p.dil_h), 4);
  const int64_t tw = ceil_div(ceil_div(p.OW, p.dil_w), 4);
  return p.dil_h * p.dil_w * th * tw >= 48 ? 4 : 2;
}

namespace {

// The forward of p. adjoint: w is the weight of the convolution whose backward-data p is
// (implicit_data_params), read flipped and channel-transposed: filter (k, c) of p is
// flip(w[c, k]) within the group.
template <class T>
void forward(const Conv3dParams& p, T* y, const T* x, const T* w, bool adjoint, const T* b,
             Activation act, int tile) {
  // No output (an empty batch; backward-data of an input with a 0 extent, padded to fit the
  // kernel): nothing to write, and the block sizes below divide by the tile rows and columns.
  if (p.N == 0 || p.out_volume() == 0) return;
  const WinogradRowKernels<T>& kr = winograd_row_kernels<T>(tile ? tile : winograd_tile(p));
  const int64_t m = kr.m, A = m + 2, XI = A * A;  // output tile side, input tile side, ξ count
  const int64_t Cg = p.Cg(), Kg = p.Kg(), G = p.groups, KD = p.KD, KC = KD * Cg;
  const int64_t HW = p.H * p.W, OHW = p.OH * p.OW, DHW = p.D * HW, ODHW = p.OD * OHW;
  const int64_t dd = p.dil_d, dh = p.dil_h, dw = p.dil_w, phases = dh * dw;
  // Input slices one output slice spans; ring slots (doubled when windows must be contiguous).
  const int64_t span = dd * (KD - 1) + 1, dup = dd == 1 && span > 1 ? span : 0;
  const int64_t slots = span + dup;
  // One phase's output plane (the largest, phase 0) in m x m tiles: rows, columns.
  const int64_t th = ceil_div(ceil_div(p.OH, dh), m), tw = ceil_div(ceil_div(p.OW, dw), m);
  const int64_t We = tw + 1;  // columns of each column-phase plane
  // The transformed filters U[g][ξ] (Kg, KD·Cg), column kd·Cg + c, packed once per call for
  // gemm_prepacked (repacking them per block and ξ cost VGG's 256-channel layers ~14 % of the
  // GEMM time): the whole window per (g, ξ), or each tap at depth dilation > 1. One item per
  // packed panel of mr output channels: their transforms go to a local buffer already in packed
  // order per ξ (slices skewed off powers of two), then each slab is one copy. (Scattering each
  // filter's XI values straight into U wrote XI streams a power of two apart, which thrashed one
  // L1 set: a third of a 7x7 layer's time.)
  // 2-D (KD = 1) keeps only the packed copy; 3-D also keeps U for windows that the depth
  // padding clips.
  const int64_t taps_packed = dd > 1 ? KD : 1, ka = dd > 1 ? Cg : KC;
  const int64_t apsize = gemm_packed_a_size<T>(Kg, ka);
  const PackedALayout lay = gemm_packed_a_layout<T>(Kg, ka);
  const int64_t mr = lay.mr, panels = lay.mp / mr;
  T* Up = thread_scratch<T>(Scratch::packed_weights, checked_mul(XI * G * taps_packed, apsize));
  T* U = KD > 1 ? thread_scratch<T>(Scratch::weights, checked_mul(XI * p.K, KC)) : nullptr;
  const int64_t su = KC * mr + kSliceSkew;  // ξ stride of the local buffer
  for_each_item(G * panels, get_num_threads(), [&](int64_t it, int) {
    const int64_t g = it / panels, k0 = it % panels * mr;
    T* ut = thread_scratch<T>(Scratch::pack_a, XI * su);  // (XI, KD·Cg, mr): packed order
    for (int64_t r = 0; r < mr; ++r) {
      if (k0 + r >= Kg) {  // the zero rows that pad the last panel
        for (int64_t xi = 0; xi < XI; ++xi)
          for (int64_t col = 0; col < KC; ++col) ut[xi * su + col * mr + r] = T(0);
        continue;
      }
      const int64_t k = k0 + r;
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t kd = 0; kd < KD; ++kd) {
          T u[36], flipped[9];
          const T* f = w + (((g * Kg + k) * Cg + c) * KD + kd) * 9;
          if (adjoint) {  // w is (G·Cg, Kg, KD, 3, 3): flip depth and plane
            const T* src = w + (((g * Cg + c) * Kg + k) * KD + KD - 1 - kd) * 9;
            for (int t = 0; t < 9; ++t) flipped[t] = src[8 - t];
            f = flipped;
          }
          transform_filter(f, static_cast<int>(m), u);
          T* dst = ut + (kd * Cg + c) * mr + r;
          for (int64_t xi = 0; xi < XI; ++xi) dst[xi * su] = u[xi];
        }
      if (U)
        for (int64_t xi = 0; xi < XI; ++xi) {
          T* row = U + ((g * XI + xi) * Kg + k0 + r) * KC;
          for (int64_t col = 0; col < KC; ++col) row[col] = ut[xi * su + col * mr + r];
        }
    }
    for (int64_t xi = 0; xi < XI; ++xi)
      for (int64_t j = 0; j < taps_packed; ++j) {  // A = U[g][ξ], columns j·Cg .. j·Cg + ka
        T* dst = Up + ((g * XI + xi) * taps_packed + j) * apsize;
        const T* src = ut + xi * su + j * Cg * mr;
        for (int64_t pc = 0; pc < ka; pc += lay.kc)  // the panel's kb x mr slab is contiguous
          std::copy_n(src + pc * mr, lay.block_width(pc) * mr, dst + lay.offset(k0, pc));
      }
  });
  // The items: (group, block of "virtual" tile rows (image, phase, tile row)), whole rows so the
  // row transforms see contiguous tiles. A block may span phases and images, so small planes
  // still make GEMMs of a full block (8x64x64x64 at dilation 4: 16x16 phases, 64 tiles each at
  // m = 2; ResNet's 7x7 planes: 16 tiles an image). Blocks are at most the workspace budget,
  // and as many as makes the items a multiple of the thread count where there are rows enough.
  std::vector<Phase> ph(static_cast<size_t>(phases));
  for (int64_t i = 0; i < phases; ++i)
    ph[static_cast<size_t>(i)] = Phase(p, i / dw, i % dw, m, th, tw);
  const int64_t prows = phases * th, vrows = p.N * prows, nthr = get_num_threads();
  int64_t rows_blk = std::max<int64_t>(
      1, std::min(vrows, kTileBudgetElems / (XI * (slots * Cg + Kg) * tw)));
  const int64_t items = ceil_div(G * ceil_div(vrows, rows_blk), nthr) * nthr;
  rows_blk = ceil_div(vrows, std::min(vrows, ceil_div(items, G)));
  const int64_t nblk = ceil_div(vrows, rows_blk);
  const int64_t Hb = m * std::min(th, rows_blk) + 2;  // plane rows of a block's largest segment
  for_each_item(G * nblk, nthr, [&](int64_t it, int inner) {
    const int64_t g = it / nblk, R0 = it % nblk * rows_blk;
    const int64_t R1 = std::min(vrows, R0 + rows_blk), nt = (R1 - R0) * tw;
    const int64_t sv = slots * Cg * nt + kSliceSkew, sm = Kg * nt + kSliceSkew;  // ξ strides
    T* xp = thread_scratch<T>(Scratch::col, Cg * m * Hb * We);  // a segment's padded planes
    T* V = thread_scratch<T>(Scratch::aux, XI * (sv + sm) + m * m * tw);  // XI x (slots, Cg, nt)
    T* M = V + XI * sv;                                                   // XI x (Kg, nt)
    T* o = M + XI * sm;                                                   // m rows of m·tw
    std::vector<int64_t> held(static_cast<size_t>(span), -1);  // input slice in each ring slot
    // Gathers input slice s's plane rows of the block, phase by phase, into m column-phase planes
    // and transforms them into its ring slot.
    auto load_slice = [&](int64_t s) {
      const int64_t slot = s % span;
      T* Vs = V + slot * Cg * nt;
      for (int64_t R = R0; R < R1;) {  // segments: the block's rows in one image and phase
        const Phase& f = ph[static_cast<size_t>(R % prows / th)];
        const int64_t ti0 = R % th, ti1 = std::min(th, ti0 + R1 - R);
        const T* xg = x + (R / prows * p.C + g * Cg) * DHW;
        const int64_t r0 = m * ti0, r1 = std::min(f.v1, m * ti1 + 2);
        const int64_t Hs = m * (ti1 - ti0) + 2;  // plane rows of this segment: (Cg, m, Hs, We)
        std::fill(xp, xp + Cg * m * Hs * We, T(0));
        for (int64_t c = 0; c < Cg; ++c)
          for (int64_t v = std::max(f.v0, r0); v < r1; ++v) {
            const T* src = xg + c * DHW + s * HW + (f.h0 + dh * v) * p.W;
            T* dst = xp + (c * m * Hs + v - r0) * We;
            for (int64_t q = 0; q < m; ++q) {  // columns j ≡ q (mod m) go to plane q, index j / m
              T* P = dst + q * Hs * We;
              const int64_t jq = f.j0 + (q - f.j0 % m + m) % m;
              for (int64_t j = jq, u = jq / m; j < f.j1; j += m, ++u) P[u] = src[f.w0 + dw * j];
            }
          }
        for (int64_t c = 0; c < Cg; ++c) {
          const T* P0 = xp + c * m * Hs * We;
          for (int64_t ti = ti0; ti < ti1; ++ti)
            kr.input_row(P0 + m * (ti - ti0) * We, Hs * We, We, tw,
                         Vs + c * nt + (R - R0 + ti - ti0) * tw, sv);
        }
        R += ti1 - ti0;
      }
      if (dup)
        for (int64_t xi = 0; xi < XI; ++xi)
          std::copy_n(Vs + xi * sv, Cg * nt, Vs + xi * sv + dup * Cg * nt);
      held[static_cast<size_t>(slot)] = s;
    };
    for (int64_t od = 0; od < p.OD; ++od) {
      const int64_t base = od * p.stride_d - p.pad_front;  // input slice of kd = 0
      const int64_t kd0 = base >= 0 ? 0 : ceil_div(-base, dd);
      const int64_t kd1 = base >= p.D ? 0 : std::min(KD, (p.D - 1 - base) / dd + 1);
      for (int64_t kd = kd0; kd < kd1; ++kd)
        if (held[static_cast<size_t>((base + kd * dd) % span)] != base + kd * dd)
          load_slice(base + kd * dd);
      for (int64_t xi = 0; xi < XI; ++xi) {
        T* Mx = M + xi * sm;
        if (kd1 <= kd0) {  // the window lies in the depth padding: bias only
          std::fill(Mx, Mx + Kg * nt, T(0));
        } else if (dd == 1) {  // one GEMM over the window's consecutive slices
          const T* B = V + xi * sv + (base + kd0) % span * Cg * nt;
          if (kd1 - kd0 == KD)
            gemm_prepacked(Kg, nt, KC, Up + (g * XI + xi) * apsize, B, nt, 1, Mx, nt, false,
                           inner);
          else  // a window clipped by the depth padding
            gemm(Kg, nt, (kd1 - kd0) * Cg, U + (g * XI + xi) * Kg * KC + kd0 * Cg, KC, 1, B, nt,
                 1, Mx, nt, false, inner);
        } else {
          for (int64_t kd = kd0; kd < kd1; ++kd)
            gemm_prepacked(Kg, nt, Cg, Up + ((g * XI + xi) * KD + kd) * apsize,
                           V + xi * sv + (base + kd * dd) % span * Cg * nt, nt, 1, Mx, nt,
                           kd > kd0, inner);
        }
      }
      for (int64_t k = 0; k < Kg; ++k) {
        const T bk = b ? b[g * Kg + k] : T(0);
        for (int64_t R = R0; R < R1; ++R) {
          T* yk = y + (R / prows * p.K + g * Kg + k) * ODHW + od * OHW;
          const Phase& f = ph[static_cast<size_t>(R % prows / th)];
          const int64_t ti = R % th;
          kr.output_row(M + k * nt + (R - R0) * tw, sm, tw, o, m * tw);
          for (int64_t a = 0; a < m && m * ti + a < f.P; ++a) {
            T* row = yk + (f.bh + dh * (m * ti + a)) * p.OW;
            const T* src = o + a * m * tw;
            if (dw == 1) {
              std::copy_n(src, f.Q, row);
              bias_act(row, f.Q, bk, act);
            } else {  // scatter this phase's columns
              for (int64_t j = 0; j < f.Q; ++j) {
                const T v = src[j] + bk;
                row[f.bw + dw * j] = act == Activation::relu && v < T(0) ? T(0) : v;
              }
            }
          }
        }
      }
    }
  });
}

}  // namespace

template <class T>
void conv_forward_winograd(const Conv3dParams& p, T* y, const T* x, const T* w, const T* b,
                           Activation act, int tile) {
  if (!winograd_applies(p, false))
    arg_error("algo='winograd' needs a 3x3 kernel (in height and width) with stride 1 there");
  forward(p, y, x, w, /*adjoint=*/false, b, act, tile);
}

template <class T>
void conv_backward_data_winograd(const Conv3dParams& p, T* dx, const T* dy, const T* w, int tile) {
  if (!winograd_applies(p, true))
    arg_error("algo='winograd' backward needs a 3x3 kernel (in height and width), stride 1 and "
              "padding <= dilation * (kernel - 1)");
  forward(implicit_data_params(p), dx, dy, w, /*adjoint=*/true, static_cast<const T*>(nullptr),
          Activation::none, tile);
}

#define CNNFAST_INSTANTIATE(T)                                                                    \
  template void conv_forward_winograd<T>(const Conv3dParams&, T*, const T*, const T*, const T*,   \
                                         Activation, int);                                        \
  template void conv_backward_data_winograd<T>(const Conv3dParams&, T*, const T*, const T*, int);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
