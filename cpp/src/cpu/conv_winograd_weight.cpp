// conv_winograd_weight.cpp — the weight gradient of a 3x3, stride-1, undilated 2-D convolution by
// Winograd F(m x m, 3x3), m = 2 or 4, α = m + 2. The forward's output tile is
// y_t = Aᵀ [U ⊙ V_t] A with U = G g Gᵀ and V_t = Bᵀ d_t B, so for the loss
//   dL/dU[k][c] = Σ_{n, t} (A dy_t Aᵀ)[k] ⊙ V_t[c]     and     dL/dg = Gᵀ (dL/dU) G:
// per block of images, V[ξ] (Cg x tiles) from the padded input planes and D[ξ] (Kg x tiles) from
// the zero-padded output-gradient planes (kernels/winograd_*: input_row, adjoint_output_row), then
// α² GEMMs dU[ξ] (Kg x Cg) += D[ξ] · V[ξ]ᵀ whose depth is the block's tiles; at the end each
// filter's dU goes back through Gᵀ · G and is added to dw. 2.25x (F2) / 4x (F4) fewer multiplies
// than the direct GEMM. Threads: over planes for the transforms, over ξ for the GEMMs (each ξ
// one thread's, its sum in block order), so the result does not depend on the thread count.
// Workspace: one block's V and D (kBlockBytes) plus dU (α² x one group's weights; 'auto' takes
// F2 where F4's would pass kMaxTransformedBytes).
#include <algorithm>

#include "cnnfast/checked.h"
#include "cnnfast/runtime.h"
#include "cpu/conv_winograd.h"
#include "cpu/dispatch.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "cpu/workspace.h"

namespace cnnfast::cpu {
namespace {

constexpr int64_t kBlockBytes = int64_t(8) << 20;            // V + D of one block of images
constexpr int64_t kMaxTransformedBytes = int64_t(16) << 20;  // dU (α² x a group's weights)
constexpr int64_t kSliceSkew = 16;  // between ξ slices: keeps 16/36 streams off one cache set

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// G (α x 3) of F(4x4,3x3), row-major (the forward's filter transform; F2's is spelled out below:
// rows [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]).
constexpr double kG4[6][3] = {{0.25, 0, 0},
                              {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                              {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                              {1.0 / 24, 1.0 / 12, 1.0 / 6},
                              {1.0 / 24, -1.0 / 12, 1.0 / 6},
                              {0, 0, 1}};

// dg[c] (3x3, at dg + c·9) += Gᵀ du[c] G for c < n, du[c] element ξ = (a, b) at du[ξ·ld + c]:
// every step a loop over the channels c (contiguous in dU), so it vectorizes; F2 spelled out
// (G's zeros and ±½), F4 from its table.
template <class T>
void filter_gradient(const T* du, int64_t ld, int64_t n, int m, T* dg) {
  constexpr int64_t kLanes = 64;
  const int a = m + 2;
  for (int64_t c0 = 0; c0 < n; c0 += kLanes) {
    const int64_t nl = std::min(kLanes, n - c0);
    T s[3][6][kLanes], r[3][3][kLanes];  // s = Gᵀ du (3 x α), r = s G
    const T* d = du + c0;
    if (m == 2) {
      for (int b = 0; b < 4; ++b)
        for (int64_t l = 0; l < nl; ++l) {
          const T d0 = d[b * ld + l], d1 = d[(4 + b) * ld + l], d2 = d[(8 + b) * ld + l],
                  d3 = d[(12 + b) * ld + l];
          const T h = T(0.5) * (d1 + d2);
          s[0][b][l] = d0 + h;
          s[1][b][l] = T(0.5) * (d1 - d2);
          s[2][b][l] = h + d3;
        }
      for (int i = 0; i < 3; ++i)
        for (int64_t l = 0; l < nl; ++l) {
          const T h = T(0.5) * (s[i][1][l] + s[i][2][l]);
          r[i][0][l] = s[i][0][l] + h;
          r[i][1][l] = T(0.5) * (s[i][1][l] - s[i][2][l]);
          r[i][2][l] = h + s[i][3][l];
        }
    } else {
      for (int i = 0; i < 3; ++i)
        for (int b = 0; b < a; ++b)
          for (int64_t l = 0; l < nl; ++l) {
            T acc = T(0);
            for (int q = 0; q < a; ++q) acc += T(kG4[q][i]) * d[(q * a + b) * ld + l];
            s[i][b][l] = acc;
          }
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
          for (int64_t l = 0; l < nl; ++l) {
            T acc = T(0);
            for (int b = 0; b < a; ++b) acc += s[i][b][l] * T(kG4[b][j]);
            r[i][j][l] = acc;
          }
    }
    for (int64_t l = 0; l < nl; ++l)
      for (int t = 0; t < 9; ++t) dg[(c0 + l) * 9 + t] += r[t / 3][t % 3][l];
  }
}

}  // namespace

bool winograd_weight_applies(const Conv3dParams& p) {
  return p.D == 1 && p.KD == 1 && p.KH == 3 && p.KW == 3 && p.stride_h == 1 &&
         p.stride_w == 1 && p.dil_h == 1 && p.dil_w == 1;
}

// 128+ channels on both sides, or 64+ where the plane takes F(4x4,3x3), and 64+ 2x2 tiles over
// the batch. Below, packing the GEMMs' thin operands outweighs the saved multiplies. Batch 16,
// 2 threads, interleaved, ms, Winograd F2 / F4 / implicit / GEMM (torch): 512 ch on 4x4 6.6 /
// 14.5 / 16.3 / 9.5 (11.2); 256 on 7x7 5.3 / 6.2 / 7.7 / 6.9 (7.3); 128 on 14x14 6.6 / 6.1 /
// 7.1 / 8.7 (9.2); 256 on 16x16 18.7 / 14.5 / 30.9 / 31.3 (34.5); 64 on 56x56 29.3 / 16.5 /
// 23.4 / 31.4 (30.1); 64 on 28x28 7.2 / 5.4 / 5.5 / 8.2; 32 on 32x32 4.9 / 2.5 / 2.4 / 6.8;
// 64 on 8x8 0.85 / 0.98 / 0.58 / 1.11.
bool winograd_weight_pays(const Conv3dParams& p) {
  const int64_t ch = std::min(p.Cg(), p.Kg());
  return winograd_weight_applies(p) && ch >= 64 && (ch >= 128 || winograd_tile(p) == 4) &&
         p.N * ceil_div(p.OH, 2) * ceil_div(p.OW, 2) >= 64;
}

template <class T>
void conv_backward_weight_winograd(const Conv3dParams& p, T* dw, const T* dy, const T* x,
                                   int tile) {
  if (!winograd_weight_applies(p))
    arg_error("algo='winograd' weight gradient needs a 2-D 3x3 kernel, stride 1, dilation 1");
  if (p.N == 0) return std::fill(dw, dw + p.K * p.Cg() * 9, T(0));  // an empty batch: zero
  int m = tile ? tile : winograd_tile(p);  // the forward's rule, unless dU would be too large
  if (!tile && m == 4 && 36 * p.Kg() * p.Cg() * int64_t(sizeof(T)) > kMaxTransformedBytes) m = 2;
  const WinogradRowKernels<T>& kr = winograd_row_kernels<T>(m);
  const int64_t XI = (m + 2) * (m + 2), Cg = p.Cg(), Kg = p.Kg(), HW = p.H * p.W;
  const int64_t OHW = p.OH * p.OW;
  const int64_t th = ceil_div(p.OH, m), tw = ceil_div(p.OW, m), TI = th * tw;  // tiles an image
  const int64_t Hx = m * th + 2, We = tw + 1;  // input planes: rows, columns of each phase plane
  const int64_t nb = std::clamp<int64_t>(
      kBlockBytes / int64_t(sizeof(T)) / std::max<int64_t>(XI * (Cg + Kg) * TI, 1), 1, p.N);
  const int64_t Tb = nb * TI, sv = Cg * Tb + kSliceSkew, sd = Kg * Tb + kSliceSkew;
  T* V = thread_scratch<T>(Scratch::aux, checked_mul(XI, sv + sd));  // XI x (Cg, Tb)
  T* D = V + XI * sv;                                                 // XI x (Kg, Tb)
  const int64_t su = checked_mul(Kg, Cg) + kSliceSkew;               // dU's ξ stride
  T* dU = thread_scratch<T>(Scratch::weights, checked_mul(XI, su));  // XI x (Kg, Cg)
  const int nt = get_num_threads();
  for (int64_t g = 0; g < p.groups; ++g) {
    for (int64_t n0 = 0; n0 < p.N; n0 += nb) {
      const int64_t n1 = std::min(p.N, n0 + nb), ld = (n1 - n0) * TI;  // this block's tiles
      // One item per plane: Cg input planes, then Kg output-gradient planes, per image.
      for_each_item((n1 - n0) * (Cg + Kg), nt, [&](int64_t it, int) {
        const int64_t i = it / (Cg + Kg), ch = it % (Cg + Kg), n = n0 + i;
        if (ch < Cg) {  // m column-phase planes of the padded input: (m, Hx, We)
          T* xp = thread_scratch<T>(Scratch::col, m * Hx * We);
          std::fill(xp, xp + m * Hx * We, T(0));
          const T* src = x + (n * p.C + g * Cg + ch) * HW;
          const int64_t v0 = std::max<int64_t>(0, p.pad_top);
          const int64_t v1 = std::min(Hx, p.pad_top + p.H);
          const int64_t j0 = std::max<int64_t>(0, p.pad_left);
          const int64_t j1 = std::min(m * We, p.pad_left + p.W);
          for (int64_t v = v0; v < v1; ++v) {
            const T* row = src + (v - p.pad_top) * p.W - p.pad_left;  // at padded column j
            for (int64_t q = 0; q < m; ++q) {  // columns j ≡ q (mod m): plane q, index j / m
              T* P = xp + (q * Hx + v) * We;
              for (int64_t j = j0 + (q - j0 % m + m) % m; j < j1; j += m) P[j / m] = row[j];
            }
          }
          for (int64_t ti = 0; ti < th; ++ti)
            kr.input_row(xp + m * ti * We, Hx * We, We, tw, V + ch * Tb + i * TI + ti * tw, sv);
        } else {  // m column-phase planes of dy, zero past the output: (m, m·th, tw)
          const int64_t k = ch - Cg, Hy = m * th;
          T* gp = thread_scratch<T>(Scratch::col, m * Hy * tw);
          std::fill(gp, gp + m * Hy * tw, T(0));
          const T* src = dy + (n * p.K + g * Kg + k) * OHW;
          for (int64_t oh = 0; oh < p.OH; ++oh)
            for (int64_t q = 0; q < m; ++q) {
              T* P = gp + (q * Hy + oh) * tw;
              for (int64_t ow = q, u = 0; ow < p.OW; ow += m, ++u) P[u] = src[oh * p.OW + ow];
            }
          for (int64_t ti = 0; ti < th; ++ti)
            kr.adjoint_output_row(gp + m * ti * tw, Hy * tw, tw, tw,
                                  D + k * Tb + i * TI + ti * tw, sd);
        }
      });
      // dU[ξ] (Kg x Cg) (+)= D[ξ] (Kg x ld) · V[ξ]ᵀ (ld x Cg)
      for_each_item(XI, nt, [&](int64_t xi, int inner) {
        gemm(Kg, Cg, ld, D + xi * sd, Tb, 1, V + xi * sv, 1, Tb, dU + xi * su, Cg, n0 > 0, inner);
      });
    }
    for_each_item(Kg, nt, [&](int64_t k, int) {
      filter_gradient(dU + k * Cg, su, Cg, m, dw + (g * Kg + k) * Cg * 9);
    });
  }
}

#define CNNFAST_INSTANTIATE(T)                                                                  \
  template void conv_backward_weight_winograd<T>(const Conv3dParams&, T*, const T*, const T*,   \
                                                 int);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
