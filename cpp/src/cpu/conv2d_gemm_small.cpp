// conv2d_gemm_small.cpp — conv2d as GEMM when one image gives a GEMM too small to pay for its
// packing (LeNet-sized layers): nb images' columns sit side by side, so each GEMM is
//   forward:      Ybuf[Kg, nb·PQ]   = W_g · col[CgRS, nb·PQ], then scattered (+bias) into y
//   backward dx:  dcol[CgRS, nb·PQ] = W_gᵀ · dYbuf[Kg, nb·PQ], then col2im per image
//   backward dw:  dW_g += dYbuf · colᵀ, each thread over its static share of blocks into a private
//                 dW, partials summed in thread order (one parallel region, no per-block fork);
//                 a dW too large to copy per thread: shared column blocks, one threaded GEMM each
// Work items are (image block, group); blocks shrink so every thread gets one. With several
// blocks the weights are packed once for all of them (gemm_pack_a) rather than per block.
// Forward and dx are bitwise independent of the block size (every output is one dot product in
// the same k order).
#include <algorithm>
#include <vector>

#include "cnnfast/checked.h"
#include "cnnfast/runtime.h"
#include "cpu/conv2d_gemm.h"
#include "cpu/conv2d_gemm_small.h"
#include "cpu/epilogue.h"
#include "cpu/gemm.h"
#include "cpu/im2col.h"
#include "cpu/parallel.h"
#include "cpu/workspace.h"

namespace cnnfast::cpu {
namespace {

// Image n's group-g output-gradient rows (Kg, PQ) into columns [at, at + PQ) of dyb (Kg, cols).
template <class T>
void place_dy(const Conv2dParams& p, int64_t g, int64_t n, const T* dy, T* dyb, int64_t at,
              int64_t cols) {
  const int64_t Kg = p.Kg(), PQ = p.P * p.Q;
  for (int64_t k = 0; k < Kg; ++k)
    std::copy_n(dy + (n * p.K + g * Kg + k) * PQ, PQ, dyb + k * cols + at);
}

// Column elements per block: small enough that im2col's output is still in L2 when the GEMM
// packs it (a 4 MiB block made LeNet conv2 3x slower than the GEMM itself).
// Blocks never go below kMinGemmCols columns when the batch has them (conv2d_gemm_small.h).
constexpr int64_t kSmallBlockElems = int64_t(1) << 16;

struct Blocks {
  int64_t Cg, Kg, rows, PQ, HW, nb, count;
  Blocks(const Conv2dParams& p, int64_t len, int nt)
      : Cg(p.Cg()), Kg(p.Kg()), rows(p.Cg() * p.R * p.S), PQ(p.P * p.Q), HW(p.H * p.W) {
    len = std::min(len, std::max<int64_t>(kSmallBlockElems / std::max<int64_t>(rows, 1), 1));
    len = std::max(len, kMinGemmCols);
    nb = std::max<int64_t>(1, len / std::max<int64_t>(PQ, 1));
    const int64_t want = (nt + p.groups - 1) / p.groups;  // blocks per group to feed every thread
    nb = std::max<int64_t>(1, std::min(nb, (p.N + want - 1) / want));
    count = (p.N + nb - 1) / nb;
    // Equal blocks in a multiple of the thread count: 16 images in blocks of 5 left one thread
    // 10 images and the other 6 (256 ch on 7x7: 4 blocks of 4 instead).
    const int64_t rounded = (count * p.groups + nt - 1) / nt * nt;
    if (rounded % p.groups == 0) count = std::min(p.N, rounded / p.groups);
    nb = (p.N + count - 1) / count;
    count = (p.N + nb - 1) / nb;
  }
};

}  // namespace

template <class T>
void conv2d_forward_gemm_small(const Conv2dParams& p, int64_t len, T* y, const T* x, const T* w,
                               const T* b, Activation act) {
  const int nt = get_num_threads();
  const Blocks B(p, len, nt);
  int64_t stride = 0;
  const T* ap = B.count < 2 ? nullptr : pack_weights_once(p, w, /*transposed=*/false, nt, stride);
  for_each_item(B.count * p.groups, nt, [&](int64_t it, int inner) {
    const int64_t g = it % p.groups, n0 = (it / p.groups) * B.nb;
    const int64_t n1 = std::min(p.N, n0 + B.nb), cols = (n1 - n0) * B.PQ;
    T* col = thread_scratch<T>(Scratch::col, B.rows * cols);  // (CgRS, nb·PQ)
    T* ybuf = thread_scratch<T>(Scratch::aux, B.Kg * cols);   // (Kg, nb·PQ)
    for (int64_t n = n0; n < n1; ++n)
      im2col_ld(p, x + (n * p.C + g * B.Cg) * B.HW, 0, B.PQ, col + (n - n0) * B.PQ, cols);
    if (ap)
      gemm_prepacked(B.Kg, cols, B.rows, ap + g * stride, col, cols, 1, ybuf, cols, false, inner);
    else
      gemm(B.Kg, cols, B.rows, w + g * B.Kg * B.rows, B.rows, 1, col, cols, 1, ybuf, cols, false,
           inner);
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t k = 0; k < B.Kg; ++k) {
        const T bk = b ? b[g * B.Kg + k] : T(0);
        const T* src = ybuf + k * cols + (n - n0) * B.PQ;
        T* dst = y + (n * p.K + g * B.Kg + k) * B.PQ;
        std::copy_n(src, B.PQ, dst);
        bias_act(dst, B.PQ, bk, act);
      }
  });
}

template <class T>
void conv2d_backward_data_gemm_small(const Conv2dParams& p, int64_t len, T* dx, const T* dy,
                                     const T* w) {
  const int nt = get_num_threads();
  const Blocks B(p, len, nt);
  int64_t stride = 0;
  const T* ap = B.count < 2 ? nullptr : pack_weights_once(p, w, /*transposed=*/true, nt, stride);
  for_each_item(B.count * p.groups, nt, [&](int64_t it, int inner) {
    const int64_t g = it % p.groups, n0 = (it / p.groups) * B.nb;
    const int64_t n1 = std::min(p.N, n0 + B.nb), cols = (n1 - n0) * B.PQ;
    T* dcol = thread_scratch<T>(Scratch::col, B.rows * cols);  // (CgRS, nb·PQ)
    T* dyb = thread_scratch<T>(Scratch::aux, B.Kg * cols);     // (Kg, nb·PQ)
    for (int64_t n = n0; n < n1; ++n) place_dy(p, g, n, dy, dyb, (n - n0) * B.PQ, cols);
    if (ap)
      gemm_prepacked(B.rows, cols, B.Kg, ap + g * stride, dyb, cols, 1, dcol, cols, false, inner);
    else
      gemm(B.rows, cols, B.Kg, w + g * B.Kg * B.rows, 1, B.rows, dyb, cols, 1, dcol, cols, false,
           inner);
    for (int64_t n = n0; n < n1; ++n) {
      T* dxg = dx + (n * p.C + g * B.Cg) * B.HW;  // (Cg, H, W)
      std::fill(dxg, dxg + B.Cg * B.HW, T(0));
      col2im_add_ld(p, dcol + (n - n0) * B.PQ, 0, B.PQ, cols, dxg);
    }
  });
}

namespace {

// A private dW per thread past this size streams from memory at every block's GEMM, then costs a
// zeroing and a reduction pass (512 ch 3x3 on 4x4, batch 16, 2 threads: 9 MiB per thread; 13.3 ms
// against 12.2 for torch).
constexpr int64_t kPrivateDwMaxBytes = int64_t(1) << 20;
// Column elements of one shared block (all threads' im2col output, one GEMM).
constexpr int64_t kSharedBlockElems = int64_t(1) << 21;

// dW_g += dYbuf · colᵀ with the columns of nb images built by all threads into one shared buffer
// and one GEMM threaded over dW's tiles: no private dW, no reduction, and the GEMM's reduction
// depth is nb·PQ. nb does not depend on the thread count, and neither does the result.
template <class T>
void backward_weight_shared_columns(const Conv2dParams& p, int nt, T* dw, const T* dy,
                                    const T* x) {
  const int64_t Cg = p.Cg(), Kg = p.Kg(), rows = Cg * p.R * p.S, PQ = p.P * p.Q, HW = p.H * p.W;
  const int64_t nb = std::clamp<int64_t>(kSharedBlockElems / std::max<int64_t>(rows * PQ, 1), 1,
                                         p.N);
  T* col = thread_scratch<T>(Scratch::col, checked_mul(rows, nb * PQ));  // (CgRS, nb·PQ)
  T* dyb = thread_scratch<T>(Scratch::aux, checked_mul(Kg, nb * PQ));    // (Kg, nb·PQ)
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t n0 = 0; n0 < p.N; n0 += nb) {
      const int64_t n1 = std::min(p.N, n0 + nb), cols = (n1 - n0) * PQ;
      for_each_item(n1 - n0, nt, [&](int64_t i, int) {
        const int64_t n = n0 + i;
        im2col_ld(p, x + (n * p.C + g * Cg) * HW, 0, PQ, col + i * PQ, cols);
        place_dy(p, g, n, dy, dyb, i * PQ, cols);
      });
      gemm(Kg, rows, cols, dyb, cols, 1, col, 1, cols, dw + g * Kg * rows, rows, true, nt);
    }
}

}  // namespace

template <class T>
void conv2d_backward_weight_gemm_small(const Conv2dParams& p, int64_t len, T* dw, const T* dy,
                                       const T* x) {
  const int nt = get_num_threads();
  if (nt > 1 && p.K * p.Cg() * p.R * p.S * int64_t(sizeof(T)) > kPrivateDwMaxBytes)
    return backward_weight_shared_columns(p, nt, dw, dy, x);
  const Blocks B(p, len, nt);
  const int64_t items = B.count * p.groups, wsize = p.K * B.rows;
  // One parallel region: thread t sums its static share of (block, group) items into a private
  // dW (nt > 1) or straight into dw; partials are then added in thread order, so the result
  // depends only on the thread count.
  const int nthr = static_cast<int>(std::min<int64_t>(nt, items));
  std::vector<T> partial(nthr > 1 ? static_cast<size_t>(nthr) * wsize : 0, T(0));
  parallel_region(nthr, [&](int t, int n) {
    int64_t b0, e0;
    static_range(items, t, n, b0, e0);
    T* out = n > 1 ? partial.data() + t * wsize : dw;
    for (int64_t it = b0; it < e0; ++it) {
      const int64_t g = it % p.groups, n0 = (it / p.groups) * B.nb;
      const int64_t n1 = std::min(p.N, n0 + B.nb), cols = (n1 - n0) * B.PQ;
      T* col = thread_scratch<T>(Scratch::col, B.rows * cols);
      T* dyb = thread_scratch<T>(Scratch::aux, B.Kg * cols);
      for (int64_t i = n0; i < n1; ++i) {
        im2col_ld(p, x + (i * p.C + g * B.Cg) * B.HW, 0, B.PQ, col + (i - n0) * B.PQ, cols);
        place_dy(p, g, i, dy, dyb, (i - n0) * B.PQ, cols);
      }
      // dW_g (Kg, CgRS) += dYbuf (Kg, cols) · colᵀ (cols, CgRS)
      gemm(B.Kg, B.rows, cols, dyb, cols, 1, col, 1, cols, out + g * B.Kg * B.rows, B.rows, true,
           1);
    }
  });
  if (nthr > 1)
    parallel_region(nthr, [&](int t, int n) {
      int64_t e0, e1;
      static_range(wsize, t, n, e0, e1);
      for (int64_t e = e0; e < e1; ++e) {
        T s = dw[e];
        for (int u = 0; u < nthr; ++u) s += partial[u * wsize + e];
        dw[e] = s;
      }
    });
}

#define CNNFAST_INSTANTIATE(T)                                                                  \
  template void conv2d_forward_gemm_small<T>(const Conv2dParams&, int64_t, T*, const T*,        \
                                             const T*, const T*, Activation);                   \
  template void conv2d_backward_data_gemm_small<T>(const Conv2dParams&, int64_t, T*, const T*,  \
                                                   const T*);                                   \
  template void conv2d_backward_weight_gemm_small<T>(const Conv2dParams&, int64_t, T*, const T*, \
                                                     const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
