// conv2d_winograd.cpp — Winograd F(2x2, 3x3) (Lavin & Gray 2015). For each (image, group):
//   pad the Cg input planes once (zero borders; extra bottom/right so every 4x4 tile is inside),
//   stored as even/odd column planes so the row transforms are unit-stride (kernels/winograd_*),
//   V[ξ][c][t] = (Bᵀ d B)[ξ] for each 4x4 input tile t (stride 2),        ξ = 0..15
//   M[ξ]       = U[ξ] · V[ξ]  — 16 packed GEMMs (Kg x Cg) · (Cg x tiles), U = G g Gᵀ per (k, c)
//   y tile     = act(Aᵀ M A + bias) — the 2x2 output, clipped at odd edges.
// Whole tile rows are processed in blocks so V and M stay within a bounded per-thread workspace.
// Backward-data is the forward of dy with the flipped, channel-transposed filter and padding
// 2 - pad (stride 1): dx[c] = Σ_k dy[k] ⋆ rot180(w[k, c]).
#include "cpu/conv2d_winograd.h"

#include <algorithm>

#include "cnnfast/checked.h"
#include "cnnfast/runtime.h"
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

// u (4x4) = G g Gᵀ for one 3x3 filter g.
template <class T>
void transform_filter(const T* g, T* u) {
  T t[4][3];
  for (int j = 0; j < 3; ++j) {
    t[0][j] = g[j];
    t[1][j] = T(0.5) * (g[j] + g[3 + j] + g[6 + j]);
    t[2][j] = T(0.5) * (g[j] - g[3 + j] + g[6 + j]);
    t[3][j] = g[6 + j];
  }
  for (int i = 0; i < 4; ++i) {
    u[i * 4 + 0] = t[i][0];
    u[i * 4 + 1] = T(0.5) * (t[i][0] + t[i][1] + t[i][2]);
    u[i * 4 + 2] = T(0.5) * (t[i][0] - t[i][1] + t[i][2]);
    u[i * 4 + 3] = t[i][2];
  }
}

}  // namespace

bool winograd_applies(const Conv2dParams& p, bool backward_data) {
  const bool shape = p.R == 3 && p.S == 3 && p.stride_h == 1 && p.stride_w == 1 &&
                     p.dil_h == 1 && p.dil_w == 1;
  if (!backward_data) return shape;
  return shape && p.pad_top <= 2 && p.pad_bottom <= 2 && p.pad_left <= 2 && p.pad_right <= 2;
}

template <class T>
void conv2d_forward_winograd(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                             Activation act) {
  if (!winograd_applies(p, false))
    arg_error("algo='winograd' needs a 3x3 kernel with stride 1 and dilation 1");
  const int64_t Cg = p.Cg(), Kg = p.Kg(), G = p.groups, HW = p.H * p.W, PQ = p.P * p.Q;
  const int64_t th = (p.P + 1) / 2, tw = (p.Q + 1) / 2;  // output tile rows, columns
  // Padded plane (every tile inside), deinterleaved into even/odd columns E and O (Hp, We).
  const int64_t Hp = 2 * th + 2, We = tw + 1, plane = 2 * Hp * We;
  // U[g][ξ] is (Kg, Cg): the transformed filters, shared read-only by every thread.
  T* U = thread_scratch<T>(Scratch::weights, 16 * p.K * Cg);
  for (int64_t g = 0; g < G; ++g)
    for (int64_t k = 0; k < Kg; ++k)
      for (int64_t c = 0; c < Cg; ++c) {
        T u[16];
        transform_filter(w + ((g * Kg + k) * Cg + c) * 9, u);
        for (int xi = 0; xi < 16; ++xi) U[((g * 16 + xi) * Kg + k) * Cg + c] = u[xi];
      }
  // Whole tile rows per block, so the row transforms see contiguous tiles.
  const int64_t rows_blk = std::max<int64_t>(1, std::min(th, kTileBudgetElems / (16 * (Cg + Kg) * tw)));
  const int64_t blk = rows_blk * tw;
  const WinogradRowKernels<T>& kr = winograd_row_kernels<T>();
  for_each_item(p.N * G, get_num_threads(), [&](int64_t it, int inner) {
    const int64_t n = it / G, g = it % G;
    T* xp = thread_scratch<T>(Scratch::col, Cg * plane);  // (Cg, {E, O}, Hp, We)
    T* VM = thread_scratch<T>(Scratch::aux, 16 * ((Cg + Kg) * blk + 2 * kSliceSkew) + 4 * tw);
    T* V = VM;                                     // 16 slices (Cg, nt), kSliceSkew apart
    T* M = VM + 16 * (Cg * blk + kSliceSkew);      // 16 slices (Kg, nt)
    T* o = M + 16 * (Kg * blk + kSliceSkew);       // two output rows of 2*tw
    const T* xg = x + (n * p.C + g * Cg) * HW;
    std::fill(xp, xp + Cg * plane, T(0));
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t h = 0; h < p.H; ++h) {
        const T* src = xg + c * HW + h * p.W;
        T* E = xp + c * plane + (p.pad_top + h) * We;
        T* O = E + Hp * We;
        for (int64_t wc = 0; wc < p.W; ++wc) {
          const int64_t pc = p.pad_left + wc;
          ((pc & 1) ? O : E)[pc >> 1] = src[wc];
        }
      }
    for (int64_t ti0 = 0; ti0 < th; ti0 += rows_blk) {
      const int64_t ti1 = std::min(th, ti0 + rows_blk), nt = (ti1 - ti0) * tw;
      const int64_t sv = Cg * nt + kSliceSkew, sm = Kg * nt + kSliceSkew;  // slice strides
      for (int64_t c = 0; c < Cg; ++c) {
        const T* E = xp + c * plane;
        for (int64_t ti = ti0; ti < ti1; ++ti)
          kr.input_row(E + 2 * ti * We, E + Hp * We + 2 * ti * We, We, tw,
                       V + c * nt + (ti - ti0) * tw, sv);
      }
      for (int xi = 0; xi < 16; ++xi)
        gemm(Kg, nt, Cg, U + (g * 16 + xi) * Kg * Cg, Cg, 1, V + xi * sv, nt, 1, M + xi * sm, nt,
             false, inner);
      const int64_t cols = p.Q;
      for (int64_t k = 0; k < Kg; ++k) {
        const T bk = b ? b[g * Kg + k] : T(0);
        T* yk = y + (n * p.K + g * Kg + k) * PQ;
        for (int64_t ti = ti0; ti < ti1; ++ti) {
          kr.output_row(M + k * nt + (ti - ti0) * tw, sm, tw, o, o + 2 * tw);
          for (int64_t a = 0; a < 2 && 2 * ti + a < p.P; ++a) {
            T* row = yk + (2 * ti + a) * p.Q;
            std::copy_n(o + a * 2 * tw, cols, row);
            bias_act(row, cols, bk, act);
          }
        }
      }
    }
  });
}

template <class T>
void conv2d_backward_data_winograd(const Conv2dParams& p, T* dx, const T* dy, const T* w) {
  if (!winograd_applies(p, true))
    arg_error("algo='winograd' backward needs a 3x3 kernel, stride 1, dilation 1, padding <= 2");
  const int64_t Cg = p.Cg(), Kg = p.Kg();
  // wt (C, Kg, 3, 3): wt[g*Cg + c][k] = rot180(w[g*Kg + k][c]).
  T* wt = thread_scratch<T>(Scratch::weights2, p.C * Kg * 9);
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t k = 0; k < Kg; ++k)
      for (int64_t c = 0; c < Cg; ++c)
        for (int e = 0; e < 9; ++e)
          wt[((g * Cg + c) * Kg + k) * 9 + e] = w[((g * Kg + k) * Cg + c) * 9 + (8 - e)];
  const Conv2dParams q = conv2d_params(p.N, p.K, p.P, p.Q, p.C, Kg, 3, 3, 1, 1, 2 - p.pad_top,
                                       2 - p.pad_bottom, 2 - p.pad_left, 2 - p.pad_right, 1, 1,
                                       p.groups);
  conv2d_forward_winograd<T>(q, dx, dy, wt, nullptr, Activation::none);
}

#define CNNFAST_INSTANTIATE(T)                                                              \
  template void conv2d_forward_winograd<T>(const Conv2dParams&, T*, const T*, const T*,     \
                                           const T*, Activation);                           \
  template void conv2d_backward_data_winograd<T>(const Conv2dParams&, T*, const T*, const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
