// conv2d_gemm.cpp — conv2d as GEMM over im2col chunks, one (image, group) per work item.
//   forward:      Y_g[Kg, PQ]   = W_g[Kg, CgRS] · col[CgRS, PQ]
//   backward dx:  unit stride: the forward on dy with flipped, transposed filters;
//                 else dcol[CgRS, PQ] = W_gᵀ · dY_g, then col2im (added into dx)
//   backward dw:  dW_g[Kg, CgRS] += dY_g · colᵀ
// The weights are packed once per call; the column chunks (col, or colᵀ for dw) are written
// straight into the GEMM's packed B panels from a zero-padded copy of the image, so no column
// matrix is built and packed again. 1×1 / stride 1 / no padding: the image itself is the column
// matrix. Output positions go in chunks so the workspace is bounded per thread; images smaller
// than half a chunk go to conv2d_gemm_small.cpp (several images per GEMM).
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "cnnfast/checked.h"
#include "cnnfast/conv.h"
#include "cnnfast/runtime.h"
#include "cpu/conv2d_gemm.h"
#include "cpu/conv2d_gemm_small.h"
#include "cpu/conv_implicit.h"
#include "cpu/channel_sums.h"
#include "cpu/dispatch.h"
#include "cpu/epilogue.h"
#include "cpu/gemm.h"
#include "cpu/im2col.h"
#include "cpu/parallel.h"
#include "cpu/workspace.h"

namespace cnnfast::cpu {
namespace {

constexpr int64_t kColBudgetElems = int64_t(1) << 19;  // per-thread column workspace (elements)

// Output positions the column workspace budget holds: a multiple of the kernel's NR.
int64_t col_budget(const Conv2dParams& p, int64_t nr) {
  const int64_t rows = std::max<int64_t>(p.Cg() * p.R * p.S, 1);
  return std::max(kColBudgetElems / rows / nr * nr, nr);
}

// Output positions per chunk of one image.
int64_t chunk_len(const Conv2dParams& p, int64_t nr) {
  return std::max<int64_t>(std::min(col_budget(p, nr), p.P * p.Q), 1);
}

struct Dims {
  int64_t Cg, Kg, rows, PQ, HW, G;
  explicit Dims(const Conv2dParams& p)
      : Cg(p.Cg()), Kg(p.Kg()), rows(p.Cg() * p.R * p.S), PQ(p.P * p.Q), HW(p.H * p.W),
        G(p.groups) {}
};

// Where the GEMM paths read columns from: for non-pointwise layers, a zero-padded copy of each
// image (v) and the tap offsets into it (off); pointwise layers read the image itself.
struct PaddedColumns {
  bool pw;
  Conv3dParams q;
  PaddedVolume v;
  std::vector<int64_t> off;
  explicit PaddedColumns(const Conv2dParams& p)
      : pw(is_pointwise(p)), q(as_conv3d(p)), v(q),
        off(pw ? std::vector<int64_t>() : tap_offsets(q, v)) {}
};

// bp = the column matrix of positions [j0, j0 + len) as gemm_prepacked_ab's B: panels of
// (rows, NR), entry (row t, position u) = xp[off[t] + origin(u)], read from the zero-padded
// image xp (so no bounds tests). A panel's positions on one output row at unit stride are one
// contiguous run of the padded row: each column row is then a short vector copy (two for a
// panel that straddles two output rows).
template <class T, int NR>
void pack_column_panels(const Conv2dParams& p, int64_t Wp, const T* xp, const int64_t* off,
                        int64_t rows, int64_t j0, int64_t len, T* bp) {
  const int64_t sw = p.stride_w;
  for (int64_t t0 = 0; t0 < len; t0 += NR) {
    const int w = static_cast<int>(std::min<int64_t>(NR, len - t0));
    int64_t org[NR];  // padded-image origin of each of the panel's positions
    int runs[NR + 1], nruns = 0;  // starts of runs of positions adjacent in xp
    int64_t i = (j0 + t0) / p.Q, q = (j0 + t0) % p.Q;
    for (int u = 0; u < w; ++u) {
      org[u] = i * p.stride_h * Wp + q * sw;
      if (u == 0 || sw != 1 || q == 0) runs[nruns++] = u;
      if (++q == p.Q) q = 0, ++i;
    }
    runs[nruns] = w;
    T* dst = bp + t0 / NR * rows * NR;
    if (nruns == 1 && w == NR) {
      for (int64_t t = 0; t < rows; ++t) {
        std::memcpy(dst + t * NR, xp + off[t] + org[0], NR * sizeof(T));  // inlined: fixed size
      }
      continue;
    }
    if (nruns == 2 && w == NR && sw == 1) {
      // Straddles two output rows: both runs as fixed-size copies, the second written over the
      // first's excess; its own excess (runs[1] entries) spills into the next column row or
      // panel, which is written after this one (the buffer has NR entries of slack).
      const int r1 = runs[1];
      for (int64_t t = 0; t < rows; ++t) {
        std::memcpy(dst + t * NR, xp + off[t] + org[0], NR * sizeof(T));
        std::memcpy(dst + t * NR + r1, xp + off[t] + org[r1], NR * sizeof(T));
      }
      continue;
    }
    for (int64_t t = 0; t < rows; ++t) {
      T* d = dst + t * NR;
      for (int k = 0; k < nruns; ++k) {
        const T* src = xp + off[t] + org[runs[k]] - runs[k];
        if (sw == 1)
          for (int u = runs[k]; u < runs[k + 1]; ++u) d[u] = src[u];
        else
          for (int u = runs[k]; u < runs[k + 1]; ++u) d[u] = xp[off[t] + org[u]];
      }
      for (int u = w; u < NR; ++u) d[u] = T(0);
    }
  }
}

template <class T>
void pack_column_panels(int64_t nr, const Conv2dParams& p, int64_t Wp, const T* xp,
                        const int64_t* off, int64_t rows, int64_t j0, int64_t len, T* bp) {
  switch (nr) {
    case 4: return pack_column_panels<T, 4>(p, Wp, xp, off, rows, j0, len, bp);
    case 8: return pack_column_panels<T, 8>(p, Wp, xp, off, rows, j0, len, bp);
    case 16: return pack_column_panels<T, 16>(p, Wp, xp, off, rows, j0, len, bp);
    case 32: return pack_column_panels<T, 32>(p, Wp, xp, off, rows, j0, len, bp);
    default: throw std::logic_error("pack_column_panels: unsupported panel width");
  }
}

}  // namespace

template <class T>
const T* pack_weights_once(const Conv2dParams& p, const T* w, bool transposed, int nt,
                           int64_t& stride) {
  const Dims d(p);
  const int64_t m = transposed ? d.rows : d.Kg, k = transposed ? d.Kg : d.rows;
  stride = gemm_packed_a_size<T>(m, k);
  T* ap = thread_scratch<T>(Scratch::weights, checked_mul(d.G, stride));
  for (int64_t g = 0; g < d.G; ++g) {
    const T* wg = w + g * d.Kg * d.rows;  // (Kg, Cg*R*S)
    gemm_pack_a(m, k, wg, transposed ? 1 : d.rows, transposed ? d.rows : 1, ap + g * stride, nt);
  }
  return ap;
}

template <class T>
void conv2d_forward_gemm(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                         Activation act) {
  const Dims d(p);
  if (small_images(p, col_budget(p, gemm_kernel<T>().nr)))
    return conv2d_forward_gemm_small(p, col_budget(p, gemm_kernel<T>().nr), y, x, w, b, act);
  // Packed once: repacking the weights for every chunk cost VGG's 256-channel layers ~20 %.
  int64_t stride = 0;
  const T* ap = pack_weights_once(p, w, /*transposed=*/false, get_num_threads(), stride);
  const int64_t len = chunk_len(p, gemm_kernel<T>().nr);
  const int64_t nr = gemm_panel_width<T>(), lenp = (len + nr - 1) / nr * nr;
  const PaddedColumns cols(p);
  const bool pw = cols.pw;
  for_each_item(p.N * d.G, get_num_threads(), [&](int64_t it, int inner) {
    const int64_t n = it / d.G, g = it % d.G;
    const T* xg = x + (n * p.C + g * d.Cg) * d.HW;  // (Cg, H, W)
    T* yg = y + (n * p.K + g * d.Kg) * d.PQ;         // (Kg, P, Q)
    // Columns go from a zero-padded copy of the image straight into the GEMM's B panels: no
    // bounds tests per entry and no column matrix for the GEMM to pack again.
    T* xp = pw ? nullptr : thread_scratch<T>(Scratch::aux, cols.v.size);  // (Cg, Hp, Wp) + slack
    T* col = pw ? nullptr : thread_scratch<T>(Scratch::col, d.rows * lenp + nr);  // + spill
    if (!pw) pad_volume(cols.q, cols.v, xg, xp);
    for (int64_t j0 = 0; j0 < d.PQ; j0 += len) {
      const int64_t l = std::min(len, d.PQ - j0);
      if (pw) {
        gemm_prepacked(d.Kg, l, d.rows, ap + g * stride, xg + j0, d.HW, 1, yg + j0, d.PQ, false,
                       inner);
      } else {
        pack_column_panels(nr, p, cols.v.Wp, xp, cols.off.data(), d.rows, j0, l, col);
        gemm_prepacked_ab(d.Kg, l, d.rows, ap + g * stride, col, yg + j0, d.PQ, false, inner);
      }
      if (b || act != Activation::none)  // epilogue on the chunk just written (in cache)
        for (int64_t k = 0; k < d.Kg; ++k)
          bias_act(yg + k * d.PQ + j0, l, b ? b[g * d.Kg + k] : T(0), act);
    }
  });
}

template <class T>
void conv2d_backward_data_gemm(const Conv2dParams& p, T* dx, const T* dy, const T* w) {
  const Dims d(p);
  const bool pw = is_pointwise(p);
  const int64_t len = chunk_len(p, gemm_kernel<T>().nr);
  if (small_images(p, col_budget(p, gemm_kernel<T>().nr)))
    return conv2d_backward_data_gemm_small(p, col_budget(p, gemm_kernel<T>().nr), dx, dy, w);
  const Conv3dParams p3 = as_conv3d(p);
  if (!pw && implicit_data_applies(p3)) {
    // Unit stride: dx is the forward of dy with the filters flipped and transposed, padded by
    // dil·(k-1) - pad (the 'full' correlation cropped to the input) — im2col + GEMM on dy
    // without a column matrix to scatter back (col2im), which bound this pass at 64 % of peak.
    T* wt = thread_scratch<T>(Scratch::weights2, checked_mul(p.C * p.Kg(), p.R * p.S));
    flip_transpose_filters(p3, w, wt);  // (C, Kg, R, S)
    const Conv3dParams q = implicit_data_params(p3);
    Conv2dParams f = p;
    f.C = p.K, f.H = p.P, f.W = p.Q, f.K = p.C, f.P = p.H, f.Q = p.W;
    f.pad_top = q.pad_top, f.pad_bottom = q.pad_bottom, f.pad_left = q.pad_left;
    f.pad_right = q.pad_right;
    return conv2d_forward_gemm(f, dx, dy, static_cast<const T*>(wt),
                               static_cast<const T*>(nullptr));
  }
  int64_t stride = 0;
  const T* ap = pack_weights_once(p, w, /*transposed=*/true, get_num_threads(), stride);
  for_each_item(p.N * d.G, get_num_threads(), [&](int64_t it, int inner) {
    const int64_t n = it / d.G, g = it % d.G;
    T* dxg = dx + (n * p.C + g * d.Cg) * d.HW;         // (Cg, H, W)
    const T* dyg = dy + (n * p.K + g * d.Kg) * d.PQ;  // (Kg, P, Q)
    const T* apg = ap + g * stride;                   // Wᵀ (Cg*R*S, Kg), packed
    if (pw) {
      gemm_prepacked(d.Cg, d.PQ, d.Kg, apg, dyg, d.PQ, 1, dxg, d.HW, false, inner);
      return;
    }
    std::fill(dxg, dxg + d.Cg * d.HW, T(0));
    T* dcol = thread_scratch<T>(Scratch::col, d.rows * len);
    for (int64_t j0 = 0; j0 < d.PQ; j0 += len) {
      const int64_t l = std::min(len, d.PQ - j0);
      gemm_prepacked(d.rows, l, d.Kg, apg, dyg + j0, d.PQ, 1, dcol, l, false, inner);
      col2im_add(p, dcol, j0, l, dxg);
    }
  });
}

namespace {
// bp = col(n)ᵀ for positions [j0, j0 + len) as gemm_prepacked_ab's B (k = positions, n = taps):
// bp[(t / NR)*len*NR + u*NR + t % NR] = xp[off[t] + origin(j0 + u)]. Taps past `rows` in the
// last panel repeat the last tap (finite; the GEMM never stores those columns).
template <class T>
void pack_column_panels_t(const GemmKernel<T>& kr, const Conv2dParams& p, int64_t Wp,
                          const T* xp, const int64_t* off, int64_t rows, int64_t j0, int64_t len,
                          T* bp) {
  const int64_t NR = kr.nr;
  const T* src[64];  // NR row pointers (NR <= 32 on every ISA)
  for (int64_t t0 = 0; t0 < rows; t0 += NR) {
    T* panel = bp + t0 / NR * len * NR;
    int64_t i = j0 / p.Q, q = j0 % p.Q;
    for (int64_t u = 0; u < len; q = 0, ++i) {  // one run of positions per output row
      const int64_t run = std::min(p.Q - q, len - u);
      const int64_t org = i * p.stride_h * Wp + q * p.stride_w;
      for (int64_t j = 0; j < NR; ++j) src[j] = xp + off[std::min(t0 + j, rows - 1)] + org;
      kr.pack_rows(run, src, p.stride_w, panel + u * NR);
      u += run;
    }
  }
}

// dw_g += dY_g(n) · col(n)ᵀ for one (image, group) item.
template <class T>
void accumulate_dw_item(const Conv2dParams& p, const Dims& d, const PaddedColumns& cols,
                        int64_t len, int64_t it, int inner, T* dw, const T* dy, const T* x) {
  const int64_t n = it / d.G, g = it % d.G;
  const T* xg = x + (n * p.C + g * d.Cg) * d.HW;
  const T* dyg = dy + (n * p.K + g * d.Kg) * d.PQ;
  T* dwg = dw + g * d.Kg * d.rows;
  if (cols.pw) {
    for (int64_t j0 = 0; j0 < d.PQ; j0 += len)
      gemm(d.Kg, d.rows, std::min(len, d.PQ - j0), dyg + j0, d.PQ, 1, xg + j0, 1, d.HW, dwg,
           d.rows, true, inner);
    return;
  }
  // col(n)ᵀ goes chunk by chunk straight into the GEMM's B panels (kr.pack_rows transposes runs
  // of positions, NR taps at a time): no im2col matrix and no strided pack of it.
  const GemmKernel<T>& kr = gemm_kernel<T>();
  const int64_t rows_p = (d.rows + kr.nr - 1) / kr.nr * kr.nr;  // whole panels of taps
  T* xp = thread_scratch<T>(Scratch::aux, cols.v.size);  // (Cg, Hp, Wp) + slack
  T* bp = thread_scratch<T>(Scratch::col, rows_p * len);
  pad_volume(cols.q, cols.v, xg, xp);
  for (int64_t j0 = 0; j0 < d.PQ; j0 += len) {
    const int64_t l = std::min(len, d.PQ - j0);
    pack_column_panels_t(kr, p, cols.v.Wp, static_cast<const T*>(xp), cols.off.data(), d.rows, j0,
                         l, bp);
    gemm_packed_b(d.Kg, d.rows, l, dyg + j0, d.PQ, 1, static_cast<const T*>(bp), dwg, d.rows,
                  true, inner);
  }
}
}  // namespace

template <class T>
void conv2d_backward_weight_gemm(const Conv2dParams& p, T* dw, T* db, const T* dy, const T* x) {
  const Dims d(p);
  const int64_t len = chunk_len(p, gemm_kernel<T>().nr);
  const int nt = get_num_threads();
  const int64_t items = p.N * d.G, wsize = p.K * d.rows;
  const PaddedColumns cols(p);
  if (dw && small_images(p, col_budget(p, gemm_kernel<T>().nr))) {
    conv2d_backward_weight_gemm_small(p, col_budget(p, gemm_kernel<T>().nr), dw, dy, x);
  } else if (dw && nt > 1 && items >= nt) {
    // Each thread sums its static share of items into a private dW; the shares are then added
    // in thread order, so the result depends only on the thread count.
    std::vector<T> partial(static_cast<size_t>(nt) * wsize, T(0));
    parallel_region(nt, [&](int t, int n) {
      int64_t b0, e0;
      static_range(items, t, n, b0, e0);
      for (int64_t it = b0; it < e0; ++it)
        accumulate_dw_item(p, d, cols, len, it, 1, partial.data() + t * wsize, dy, x);
    });
    parallel_region(nt, [&](int t, int n) {
      int64_t b0, e0;
      static_range(wsize, t, n, b0, e0);
      for (int64_t e = b0; e < e0; ++e) {
        T s = dw[e];
        for (int u = 0; u < nt; ++u) s += partial[u * wsize + e];
        dw[e] = s;
      }
    });
  } else if (dw) {
    for (int64_t it = 0; it < items; ++it) accumulate_dw_item(p, d, cols, len, it, nt, dw, dy, x);
  }
  if (db) accumulate_channel_sums(p.N, p.K, d.PQ, db, dy);
}

#define CNNFAST_INSTANTIATE(T)                                                                  \
  template const T* pack_weights_once<T>(const Conv2dParams&, const T*, bool, int, int64_t&); \
  template void conv2d_forward_gemm<T>(const Conv2dParams&, T*, const T*, const T*, const T*,   \
                                       Activation);                                             \
  template void conv2d_backward_data_gemm<T>(const Conv2dParams&, T*, const T*, const T*);      \
  template void conv2d_backward_weight_gemm<T>(const Conv2dParams&, T*, T*, const T*, const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
