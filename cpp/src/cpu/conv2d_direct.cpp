// conv2d_direct.cpp — direct conv2d: each (image, group) copies its Cg input planes once into a
// zero-padded per-thread plane buffer, then the row microkernels sweep output rows; no im2col.
//   forward / backward-data: one work item per (image, group), threads split items statically
//   backward-weight: one item per (group, block of output channels); each item owns its dW rows,
//   so no cross-thread reduction and the result does not depend on the thread count.
#include <algorithm>
#include <cstring>

#include "cnnfast/runtime.h"
#include "cpu/conv2d_direct.h"
#include "cpu/conv2d_gemm.h"
#include "cpu/dispatch.h"
#include "cpu/epilogue.h"
#include "cpu/parallel.h"
#include "cpu/workspace.h"

namespace cnnfast::cpu {
namespace {

struct Geo {
  int64_t Cg, Kg, RS, PQ, HW, Hp, Wp, plane, ldr;
  explicit Geo(const Conv2dParams& p)
      : Cg(p.Cg()), Kg(p.Kg()), RS(p.R * p.S), PQ(p.P * p.Q), HW(p.H * p.W),
        Hp(p.H + p.pad_top + p.pad_bottom), Wp(p.W + p.pad_left + p.pad_right), plane(Hp * Wp),
        ldr(p.dil_h * Wp) {}
};

}  // namespace

template <class T>
void conv2d_forward_direct(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                           Activation act) {
  if (depthwise_rows_apply(p, false)) return conv2d_forward_depthwise(p, y, x, w, b, act);
  if (direct_block_applies(p, false)) return conv2d_forward_direct_block(p, y, x, w, b, act);
  const Geo g(p);
  const DirectRowKernels<T>& kr = direct_row_kernels<T>();
  for_each_item(p.N * p.groups, get_num_threads(), [&](int64_t it, int) {
    const int64_t n = it / p.groups, gr = it % p.groups;
    T* xp = thread_scratch<T>(Scratch::col, g.Cg * g.plane);  // (Cg, Hp, Wp)
    pad_planes(p, g.Cg, g.Wp, x + (n * p.C + gr * g.Cg) * g.HW, xp);
    for (int64_t kk = 0; kk < g.Kg; ++kk) {
      const int64_t k = gr * g.Kg + kk;
      T* yk = y + (n * p.K + k) * g.PQ;  // (P, Q)
      const T* wk = w + k * g.Cg * g.RS;  // (Cg, R, S)
      for (int64_t i = 0; i < p.P; ++i) {
        T* row = yk + i * p.Q;
        std::fill(row, row + p.Q, T(0));
        for (int64_t c = 0; c < g.Cg; ++c)
          kr.fwd(row, xp + c * g.plane + i * p.stride_h * g.Wp, g.ldr, wk + c * g.RS, p.R, p.S,
                 p.Q, p.stride_w, p.dil_w);
        bias_act(row, p.Q, b ? b[k] : T(0), act);
      }
    }
  });
}

template <class T>
void conv2d_backward_data_direct(const Conv2dParams& p, T* dx, const T* dy, const T* w) {
  if (depthwise_rows_data_apply(p)) return conv2d_backward_data_depthwise(p, dx, dy, w);
  if (direct_block_data_applies(p)) return conv2d_backward_data_direct_block(p, dx, dy, w);
  const Geo g(p);
  const DirectRowKernels<T>& kr = direct_row_kernels<T>();
  for_each_item(p.N * p.groups, get_num_threads(), [&](int64_t it, int) {
    const int64_t n = it / p.groups, gr = it % p.groups;
    T* dxp = thread_scratch<T>(Scratch::col, g.Cg * g.plane);  // (Cg, Hp, Wp), padded dx
    std::fill(dxp, dxp + g.Cg * g.plane, T(0));
    for (int64_t kk = 0; kk < g.Kg; ++kk) {
      const int64_t k = gr * g.Kg + kk;
      const T* dyk = dy + (n * p.K + k) * g.PQ;
      const T* wk = w + k * g.Cg * g.RS;
      for (int64_t i = 0; i < p.P; ++i)
        for (int64_t c = 0; c < g.Cg; ++c)
          kr.bwd_data(dxp + c * g.plane + i * p.stride_h * g.Wp, g.ldr, dyk + i * p.Q,
                      wk + c * g.RS, p.R, p.S, p.Q, p.stride_w, p.dil_w);
    }
    T* dxg = dx + (n * p.C + gr * g.Cg) * g.HW;  // (Cg, H, W): the padded planes' interiors
    for (int64_t c = 0; c < g.Cg; ++c)
      for (int64_t h = 0; h < p.H; ++h)
        std::memcpy(dxg + c * g.HW + h * p.W, dxp + c * g.plane + (p.pad_top + h) * g.Wp + p.pad_left,
                    sizeof(T) * p.W);
  });
}

template <class T>
void conv2d_backward_weight_direct(const Conv2dParams& p, T* dw, T* db, const T* dy, const T* x) {
  if (depthwise_rows_apply(p, true)) return conv2d_backward_weight_depthwise(p, dw, db, dy, x);
  if (direct_block_applies(p, true)) return conv2d_backward_weight_direct_block(p, dw, db, dy, x);
  if (db) conv2d_backward_weight_gemm<T>(p, nullptr, db, dy, x);  // Σ dy per channel only
  if (!dw) return;
  const Geo g(p);
  const DirectRowKernels<T>& kr = direct_row_kernels<T>();
  const int nt = get_num_threads();
  // Output channels per item: whole groups when there are enough of them, else split each group.
  const int64_t kb = p.groups >= nt ? g.Kg : std::max<int64_t>(1, (g.Kg + nt - 1) / nt);
  const int64_t blocks = (g.Kg + kb - 1) / kb;
  for_each_item(p.groups * blocks, nt, [&](int64_t it, int) {
    const int64_t gr = it / blocks, k0 = gr * g.Kg + (it % blocks) * kb;
    const int64_t k1 = std::min(k0 + kb, (gr + 1) * g.Kg);
    const int64_t taps = g.Cg * g.RS;  // dW entries per output channel
    T* acc = thread_scratch<T>(Scratch::pack_a, (k1 - k0) * taps * p.Q);  // (kb, Cg, R, S, Q)
    T* xp = thread_scratch<T>(Scratch::col, g.Cg * g.plane);
    std::fill(acc, acc + (k1 - k0) * taps * p.Q, T(0));
    for (int64_t n = 0; n < p.N; ++n) {
      pad_planes(p, g.Cg, g.Wp, x + (n * p.C + gr * g.Cg) * g.HW, xp);
      for (int64_t k = k0; k < k1; ++k) {
        const T* dyk = dy + (n * p.K + k) * g.PQ;
        for (int64_t i = 0; i < p.P; ++i)
          for (int64_t c = 0; c < g.Cg; ++c)
            kr.bwd_weight(acc + ((k - k0) * g.Cg + c) * g.RS * p.Q, dyk + i * p.Q,
                          xp + c * g.plane + i * p.stride_h * g.Wp, g.ldr, p.R, p.S, p.Q,
                          p.stride_w, p.dil_w);
      }
    }
    for (int64_t e = 0; e < (k1 - k0) * taps; ++e) {
      const T* a = acc + e * p.Q;
      T s = T(0);
      for (int64_t j = 0; j < p.Q; ++j) s += a[j];
      dw[k0 * taps + e] += s;
    }
  });
}

#define CNNFAST_INSTANTIATE(T)                                                                  \
  template void conv2d_forward_direct<T>(const Conv2dParams&, T*, const T*, const T*, const T*, \
                                         Activation);                                           \
  template void conv2d_backward_data_direct<T>(const Conv2dParams&, T*, const T*, const T*);     \
  template void conv2d_backward_weight_direct<T>(const Conv2dParams&, T*, T*, const T*, const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
