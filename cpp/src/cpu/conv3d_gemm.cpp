// conv3d_gemm.cpp — conv3d as GEMM over vol2col chunks, one (image, group) per work item.
//   forward:      Y_g[Kg, ODHW]    = W_g[Kg, Cg·taps] · col[Cg·taps, ODHW]
//   backward dx:  dcol[Cg·taps, .] = W_gᵀ · dY_g, then col2vol (added into dx)
//   backward dw:  dW_g[Kg, Cg·taps] += dY_g · colᵀ  (per-thread partial sums, added in order)
// 1×1×1 / stride 1 / no padding skips vol2col: the volume itself is the column matrix.
#include "cpu/conv3d_gemm.h"

#include <algorithm>
#include <vector>

#include "cnnfast/runtime.h"
#include "cpu/channel_sums.h"
#include "cpu/dispatch.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "cpu/vol2col.h"
#include "cpu/workspace.h"

namespace cnnfast::cpu {
namespace {

constexpr int64_t kColBudgetElems = int64_t(1) << 19;  // per-thread column workspace (elements)

struct Dims {
  int64_t Cg, Kg, rows, out, in, G;
  bool pointwise;
  Grid3 grid;
  explicit Dims(const Conv3dParams& p)
      : Cg(p.Cg()), Kg(p.Kg()), rows(p.Cg() * p.taps()), out(p.out_volume()),
        in(p.in_volume()), G(p.groups), grid(output_grid(p)) {
    pointwise = p.taps() == 1 && p.stride_d == 1 && p.stride_h == 1 && p.stride_w == 1 &&
                p.pad_front == 0 && p.pad_back == 0 && p.pad_top == 0 && p.pad_bottom == 0 &&
                p.pad_left == 0 && p.pad_right == 0;
  }
  // Output positions per chunk: fills the workspace budget, a multiple of the kernel's NR.
  int64_t chunk(int64_t nr) const {
    const int64_t len = std::max(kColBudgetElems / std::max<int64_t>(rows, 1) / nr * nr, nr);
    return std::max<int64_t>(std::min(len, out), 1);
  }
};

// dw_g += dY_g(n) · col(n)ᵀ for one (image, group) item.
template <class T>
void accumulate_dw_item(const Conv3dParams& p, const Dims& d, int64_t len, int64_t it, int inner,
                        T* dw, const T* dy, const T* x) {
  const int64_t n = it / d.G, g = it % d.G;
  const T* xg = x + (n * p.C + g * d.Cg) * d.in;     // (Cg, D, H, W)
  const T* dyg = dy + (n * p.K + g * d.Kg) * d.out;  // (Kg, OD, OH, OW)
  T* dwg = dw + g * d.Kg * d.rows;                   // (Kg, Cg*taps)
  T* col = d.pointwise ? nullptr : thread_scratch<T>(Scratch::col, d.rows * len);
  for (int64_t j0 = 0; j0 < d.out; j0 += len) {
    const int64_t l = std::min(len, d.out - j0);
    if (!d.pointwise) vol2col(p, d.grid, xg, j0, l, col, l);
    const T* bsrc = d.pointwise ? xg + j0 : col;
    gemm(d.Kg, d.rows, l, dyg + j0, d.out, 1, bsrc, 1, d.pointwise ? d.in : l, dwg, d.rows, true,
         inner);
  }
}

}  // namespace

template <class T>
void conv3d_forward_gemm(const Conv3dParams& p, T* y, const T* x, const T* w, const T* b) {
  const Dims d(p);
  const int64_t len = d.chunk(gemm_kernel<T>().nr);
  for_each_item(p.N * d.G, get_num_threads(), [&](int64_t it, int inner) {
    const int64_t n = it / d.G, g = it % d.G;
    const T* xg = x + (n * p.C + g * d.Cg) * d.in;  // (Cg, D, H, W)
    T* yg = y + (n * p.K + g * d.Kg) * d.out;        // (Kg, OD, OH, OW)
    const T* wg = w + g * d.Kg * d.rows;            // (Kg, Cg*taps)
    T* col = d.pointwise ? nullptr : thread_scratch<T>(Scratch::col, d.rows * len);
    for (int64_t j0 = 0; j0 < d.out; j0 += len) {
      const int64_t l = std::min(len, d.out - j0);
      if (!d.pointwise) vol2col(p, d.grid, xg, j0, l, col, l);
      const T* bsrc = d.pointwise ? xg + j0 : col;
      gemm(d.Kg, l, d.rows, wg, d.rows, 1, bsrc, d.pointwise ? d.in : l, 1, yg + j0, d.out, false,
           inner);
      if (b)
        for (int64_t k = 0; k < d.Kg; ++k) {
          const T bk = b[g * d.Kg + k];
          T* yk = yg + k * d.out + j0;
          for (int64_t t = 0; t < l; ++t) yk[t] += bk;
        }
    }
  });
}

template <class T>
void conv3d_backward_data_gemm(const Conv3dParams& p, T* dx, const T* dy, const T* w) {
  const Dims d(p);
  const int64_t len = d.chunk(gemm_kernel<T>().nr);
  for_each_item(p.N * d.G, get_num_threads(), [&](int64_t it, int inner) {
    const int64_t n = it / d.G, g = it % d.G;
    T* dxg = dx + (n * p.C + g * d.Cg) * d.in;         // (Cg, D, H, W)
    const T* dyg = dy + (n * p.K + g * d.Kg) * d.out;  // (Kg, OD, OH, OW)
    const T* wg = w + g * d.Kg * d.rows;               // (Kg, Cg*taps), read transposed
    if (d.pointwise) {
      gemm(d.Cg, d.out, d.Kg, wg, 1, d.rows, dyg, d.out, 1, dxg, d.in, false, inner);
      return;
    }
    std::fill(dxg, dxg + d.Cg * d.in, T(0));
    T* dcol = thread_scratch<T>(Scratch::col, d.rows * len);
    for (int64_t j0 = 0; j0 < d.out; j0 += len) {
      const int64_t l = std::min(len, d.out - j0);
      gemm(d.rows, l, d.Kg, wg, 1, d.rows, dyg + j0, d.out, 1, dcol, l, false, inner);
      col2vol_add(p, d.grid, dcol, j0, l, l, dxg);
    }
  });
}

template <class T>
void conv3d_backward_weight_gemm(const Conv3dParams& p, T* dw, T* db, const T* dy, const T* x) {
  const Dims d(p);
  const int64_t len = d.chunk(gemm_kernel<T>().nr);
  const int nt = get_num_threads();
  const int64_t items = p.N * d.G, wsize = p.K * d.rows;
  if (dw && nt > 1 && items >= nt) {
    // Private dW per thread over its static share of items, then added in thread order.
    std::vector<T> partial(static_cast<size_t>(nt) * wsize, T(0));
    parallel_region(nt, [&](int t, int n) {
      int64_t b0, e0;
      static_range(items, t, n, b0, e0);
      for (int64_t it = b0; it < e0; ++it)
        accumulate_dw_item(p, d, len, it, 1, partial.data() + t * wsize, dy, x);
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
    for (int64_t it = 0; it < items; ++it) accumulate_dw_item(p, d, len, it, nt, dw, dy, x);
  }
  if (db) accumulate_channel_sums(p.N, p.K, d.out, db, dy);
}

#define CNNFAST_INSTANTIATE(T)                                                                  \
  template void conv3d_forward_gemm<T>(const Conv3dParams&, T*, const T*, const T*, const T*);  \
  template void conv3d_backward_data_gemm<T>(const Conv3dParams&, T*, const T*, const T*);      \
  template void conv3d_backward_weight_gemm<T>(const Conv3dParams&, T*, T*, const T*, const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
