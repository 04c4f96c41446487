// conv2d_winograd_tiles.cuh — the per-tile programs of the CUDA Winograd F(m x m, 3x3)
// convolution (conv2d_winograd.cu), m = 2 or 4, α = m + 2, the points of the CPU's
// (cpu/kernels/winograd_f{2,4}x3_rows_impl.h; Lavin & Gray 2015):
//   F(2,3): Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], Aᵀ = [1 1 1 0; 0 1 -1 -1],
//           G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
//   F(4,3): Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
//                 0 4 0 -5 0 1], Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1],
//           G = [¼ 0 0; -⅙ -⅙ -⅙; -⅙ ⅙ -⅙; 1/24 1/12 ⅙; 1/24 -1/12 ⅙; 0 0 1]
// Each body handles one (channel, tile) or one (output channel, input channel) per index, so
// for_each_index runs it as one grid-stride kernel or, on the host, as the emulation.
// Transformed tensors are [ξ][channel][tile] (ξ < α², channel over all groups): group g of the
// transformed-domain GEMMs is gg = ξ·G + g, whose rows start at gg·(channels per group).
#pragma once
#include "cuda/conv2d_gemm_tile.cuh"

namespace cnnfast::cuda::wino {

using gemm::FastDiv;

// 1-D transforms: out[i·so] = (Mat · in)[i] for in[j·si]; Mat Bᵀ (α → α), Aᵀ (α → m), its
// adjoint A (m → α), G (3 → α) and its adjoint Gᵀ (α → 3).
template <int M>
struct Mats;

template <>
struct Mats<2> {
  struct BT {
    CNNFAST_HD void operator()(const float* d, int si, float* o, int so) const {
      const float d0 = d[0], d1 = d[si], d2 = d[2 * si], d3 = d[3 * si];
      o[0] = d0 - d2, o[so] = d1 + d2, o[2 * so] = d2 - d1, o[3 * so] = d1 - d3;
    }
  };
  struct AT {
    CNNFAST_HD void operator()(const float* m, int si, float* o, int so) const {
      const float m1 = m[si], m2 = m[2 * si];
      o[0] = m[0] + m1 + m2, o[so] = m1 - m2 - m[3 * si];
    }
  };
  struct A {
    CNNFAST_HD void operator()(const float* d, int si, float* o, int so) const {
      const float d0 = d[0], d1 = d[si];
      o[0] = d0, o[so] = d0 + d1, o[2 * so] = d0 - d1, o[3 * so] = -d1;
    }
  };
  struct G {
    CNNFAST_HD void operator()(const float* g, int si, float* o, int so) const {
      const float g0 = g[0], g1 = g[si], g2 = g[2 * si];
      o[0] = g0, o[so] = 0.5f * (g0 + g1 + g2), o[2 * so] = 0.5f * (g0 - g1 + g2), o[3 * so] = g2;
    }
  };
  struct GT {
    CNNFAST_HD void operator()(const float* u, int si, float* o, int so) const {
      const float u1 = u[si], u2 = u[2 * si];
      o[0] = u[0] + 0.5f * (u1 + u2), o[so] = 0.5f * (u1 - u2),
      o[2 * so] = 0.5f * (u1 + u2) + u[3 * si];
    }
  };
};

template <>
struct Mats<4> {
  struct BT {
    CNNFAST_HD void operator()(const float* d, int si, float* o, int so) const {
      const float d0 = d[0], d1 = d[si], d2 = d[2 * si], d3 = d[3 * si], d4 = d[4 * si],
                  d5 = d[5 * si];
      const float a = d4 - 4.f * d2, b = d3 - 4.f * d1, c = d4 - d2, e = 2.f * (d3 - d1);
      o[0] = 4.f * d0 - 5.f * d2 + d4, o[so] = a + b, o[2 * so] = a - b, o[3 * so] = c + e,
      o[4 * so] = c - e, o[5 * so] = 4.f * d1 - 5.f * d3 + d5;
    }
  };
  struct AT {
    CNNFAST_HD void operator()(const float* m, int si, float* o, int so) const {
      const float m1 = m[si], m2 = m[2 * si], m3 = m[3 * si], m4 = m[4 * si];
      const float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
      o[0] = m[0] + a + c, o[so] = b + 2.f * d, o[2 * so] = a + 4.f * c,
      o[3 * so] = b + 8.f * d + m[5 * si];
    }
  };
  struct A {
    CNNFAST_HD void operator()(const float* d, int si, float* o, int so) const {
      const float d0 = d[0], d1 = d[si], d2 = d[2 * si], d3 = d[3 * si];
      const float e = d0 + d2, f = d1 + d3, g = d0 + 4.f * d2, h = 2.f * d1 + 8.f * d3;
      o[0] = d0, o[so] = e + f, o[2 * so] = e - f, o[3 * so] = g + h, o[4 * so] = g - h,
      o[5 * so] = d3;
    }
  };
  struct G {  // products with rounded reciprocals, as the CPU's filter_g
    CNNFAST_HD void operator()(const float* g, int si, float* o, int so) const {
      const float r6 = 1.f / 6.f, r12 = 1.f / 12.f, r24 = 1.f / 24.f;
      const float g0 = g[0], g1 = g[si], g2 = g[2 * si];
      o[0] = 0.25f * g0, o[so] = -r6 * (g0 + g1 + g2), o[2 * so] = -r6 * (g0 - g1 + g2),
      o[3 * so] = r24 * g0 + r12 * g1 + r6 * g2, o[4 * so] = r24 * g0 - r12 * g1 + r6 * g2,
      o[5 * so] = g2;
    }
  };
  struct GT {
    CNNFAST_HD void operator()(const float* u, int si, float* o, int so) const {
      const float r6 = 1.f / 6.f, r12 = 1.f / 12.f, r24 = 1.f / 24.f;
      const float u0 = u[0], u1 = u[si], u2 = u[2 * si], u3 = u[3 * si], u4 = u[4 * si];
      o[0] = 0.25f * u0 - r6 * (u1 + u2) + r24 * (u3 + u4);
      o[so] = r6 * (u2 - u1) + r12 * (u3 - u4);
      o[2 * so] = r6 * (u3 + u4 - u1 - u2) + u[5 * si];
    }
  };
};

// out (OUT x OUT) = F in Fᵀ for in (IN x IN), both row-major: F down the columns, then the rows.
template <int IN, int OUT, class F>
CNNFAST_HD inline void apply2d(const float* in, float* out, F f) {
  float t[OUT * IN];
CNNFAST_UNROLL
  for (int j = 0; j < IN; ++j) f(in + j, IN, t + j, IN);
CNNFAST_UNROLL
  for (int i = 0; i < OUT; ++i) f(t + i * IN, 1, out + i * OUT, 1);
}

// The tiles of one batch chunk over an output plane (Hout, Wout) read from an input plane
// (Hin, Win) at offset (−pt, −pl) and dilation (dh, dw). Dilation splits the plane into dh x dw
// phases; tile t = (n·TR + tr)·TC + tc, tr = th·dh + bh (bh the row phase), likewise tc. Its
// output rows are r0 + dh·a (a < m), its input rows r0 − pt + dh·i (i < α), r0 = bh + dh·m·th.
struct TileGrid {
  FastDiv TI, TC, dh, dw;  // tiles per image, tile columns, dilation
  int m, Hin, Win, Hout, Wout, pt, pl;
  CNNFAST_HD void locate(int t, int* n, int* r0, int* c0) const {
    *n = TI.div(t);
    const int in_image = t - *n * TI.d, tr = TC.div(in_image), tc = in_image - tr * TC.d;
    const int th = dh.div(tr), tw = dw.div(tc);
    *r0 = (tr - th * dh.d) + dh.d * m * th;
    *c0 = (tc - tw * dw.d) + dw.d * m * tw;
  }
};

// d[a·S + b] = plane[(r0 + dh·a)·W + c0 + dw·b] inside [0, H) x [0, W), else 0 (a, b < S).
template <int S>
CNNFAST_HD inline void gather_tile(const float* plane, int H, int W, int r0, int c0, int dh,
                                   int dw, float* d) {
CNNFAST_UNROLL
  for (int a = 0; a < S; ++a) {
    const int h = r0 + dh * a;
CNNFAST_UNROLL
    for (int b = 0; b < S; ++b) {
      const int w = c0 + dw * b;
      const bool inside = unsigned(h) < unsigned(H) && unsigned(w) < unsigned(W);
      d[a * S + b] = inside ? plane[h * W + w] : 0.f;
    }
  }
}

// dst[ξ][c][t] = (F d Fᵀ)[ξ] for tile t of channel c; index = c·T + t over `channels`:
//   kInput: d the α x α input tile (zeros outside the plane), F = Bᵀ — V for the GEMMs;
//   else:   d the m x m tile of dy (zeros outside), F = A, the adjoint of OutputTransform — the
//           weight gradient's dM.
template <int M, bool kInput>
struct TileTransform {
  float* dst;        // [α²][channels][T]
  const float* src;  // (N, channels, Hin, Win) or (N, channels, Hout, Wout) of the chunk
  TileGrid g;
  FastDiv T;
  int channels;
  CNNFAST_HD void operator()(int i) const {
    constexpr int Al = M + 2, S = kInput ? Al : M;
    const int c = T.div(i), t = i - c * T.d;
    int n, r0, c0;
    g.locate(t, &n, &r0, &c0);
    float d[S * S], u[Al * Al];
    if constexpr (kInput) {
      gather_tile<S>(src + (n * channels + c) * g.Hin * g.Win, g.Hin, g.Win, r0 - g.pt,
                     c0 - g.pl, g.dh.d, g.dw.d, d);
      apply2d<S, Al>(d, u, typename Mats<M>::BT{});
    } else {
      gather_tile<S>(src + (n * channels + c) * g.Hout * g.Wout, g.Hout, g.Wout, r0, c0, g.dh.d,
                     g.dw.d, d);
      apply2d<S, Al>(d, u, typename Mats<M>::A{});
    }
    const int step = channels * T.d;
CNNFAST_UNROLL
    for (int xi = 0; xi < Al * Al; ++xi) dst[xi * step + i] = u[xi];
  }
};
template <int M>
using InputTransform = TileTransform<M, true>;
template <int M>
using AdjointOutput = TileTransform<M, false>;

// y tile of (k, t) = act(Aᵀ M A + b[k]), M[ξ] = mt[ξ][k][t], clipped to the plane; index = k·T + t.
template <int M>
struct OutputTransform {
  float* y;          // (N, Kout, Hout, Wout) of the chunk
  const float* mt;   // [α²][Kout][T]
  const float* b;    // (Kout) or null
  TileGrid g;
  FastDiv T;
  int Kout;
  bool relu;
  CNNFAST_HD void operator()(int i) const {
    constexpr int Al = M + 2;
    const int k = T.div(i), t = i - k * T.d, step = Kout * T.d;
    float mm[Al * Al], o[M * M];
CNNFAST_UNROLL
    for (int xi = 0; xi < Al * Al; ++xi) mm[xi] = mt[xi * step + i];
    apply2d<Al, M>(mm, o, typename Mats<M>::AT{});
    int n, r0, c0;
    g.locate(t, &n, &r0, &c0);
    float* plane = y + (n * Kout + k) * g.Hout * g.Wout;
    const float bias = b ? b[k] : 0.f;
CNNFAST_UNROLL
    for (int a = 0; a < M; ++a) {
      const int h = r0 + g.dh.d * a;
CNNFAST_UNROLL
      for (int e = 0; e < M; ++e) {
        const int w = c0 + g.dw.d * e;
        if (h < g.Hout && w < g.Wout) {
          float v = o[a * M + e] + bias;
          if (relu) v = v < 0.f ? 0.f : v;  // keeps NaN, as the CPU epilogue
          plane[h * g.Wout + w] = v;
        }
      }
    }
  }
};

// u = G w[k, c] Gᵀ for the filters w (K, Cg, 3, 3); index = k·Cg + c. Forward: u[ξ][k][c].
// for_data: the filters of the backward-data convolution (dy → dx), flipped and transposed in
// each group: u[ξ][g·Cg + c][k − g·Kg] from flip(w[k, c]).
template <int M>
struct FilterTransform {
  float* u;
  const float* w;
  FastDiv Cg, Kg;
  int K;
  bool for_data;
  CNNFAST_HD void operator()(int i) const {
    constexpr int Al = M + 2;
    const int k = Cg.div(i), c = i - k * Cg.d;
    float f[9], o[Al * Al];
CNNFAST_UNROLL
    for (int e = 0; e < 9; ++e) f[e] = w[i * 9 + (for_data ? 8 - e : e)];
    apply2d<3, Al>(f, o, typename Mats<M>::G{});
    int at = i;
    if (for_data) {
      const int g = Kg.div(k), kl = k - g * Kg.d;
      at = (g * Cg.d + c) * Kg.d + kl;
    }
    const int step = K * Cg.d;
CNNFAST_UNROLL
    for (int xi = 0; xi < Al * Al; ++xi) u[xi * step + at] = o[xi];
  }
};

// The adjoint of FilterTransform (forward layout): dw[k, c] += Gᵀ du[·][k][c] G; index = k·Cg + c.
template <int M>
struct AdjointFilter {
  float* dw;         // (K, Cg, 3, 3)
  const float* du;   // [α²][K][Cg]
  int KCg;
  CNNFAST_HD void operator()(int i) const {
    constexpr int Al = M + 2;
    float f[Al * Al], o[9];
CNNFAST_UNROLL
    for (int xi = 0; xi < Al * Al; ++xi) f[xi] = du[xi * KCg + i];
    apply2d<Al, 3>(f, o, typename Mats<M>::GT{});
CNNFAST_UNROLL
    for (int e = 0; e < 9; ++e) dw[i * 9 + e] += o[e];
  }
};

}  // namespace cnnfast::cuda::wino
