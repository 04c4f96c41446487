// conv2d.cpp — the public conv2d entry points: pick an algorithm, run it. One place per op.
// 'auto' rules (measured on AVX2, see bench/RESULTS.md): depthwise (one input channel per group)
// runs direct — GEMM with a 1-row A panel per group is packing overhead only; so do layers with
// at most 8 output (backward-data: input) channels at unit stride (register-blocked direct
// kernels, direct_block_pays);
// 3x3 stride-1 layers with >= 16 channels per group run Winograd F(2x2,3x3) forward and
// backward-data (dilated ones too, in phases; weight gradients: see resolve_weight; AVX-512's
// wide implicit tile takes some back: wide_implicit_beats_winograd); other
// forwards run the implicit GEMM (straight from the padded image, no im2col: LeNet conv2 2.6x
// faster) when one group's packed weights fit in L2 (threads share one image's tiles);
// everything else runs im2col + GEMM.
#include <algorithm>

#include "cnnfast/conv.h"
#include "cnnfast/nn.h"
#include "cnnfast/runtime.h"
#include "cpu/channel_sums.h"
#include "cpu/conv2d_direct.h"
#include "cpu/conv2d_gemm.h"
#include "cpu/conv_implicit.h"
#include "cpu/conv_winograd.h"
#include "cpu/dispatch.h"
#include "cpu/epilogue.h"
#include "ref/conv2d_ref.h"

namespace cnnfast {
namespace {

bool depthwise(const Conv2dParams& p) { return p.groups > 1 && p.Cg() == 1; }

bool winograd_pays(const Conv2dParams& p, bool backward_data) {
  return cpu::winograd_pays(cpu::as_conv3d(p), backward_data);  // rule and numbers: there
}

// Forward of one group's weights that fit in L2: implicit (threads split (image, group, tile)).
// Planes under 8x8 go to the batched GEMM instead (conv2d_gemm_small; 3x3, batch 16, 2 threads:
// 256 ch on 7x7 8.1 vs 9.2 ms, 512 ch on 4x4 10.0 vs 15.2).
bool implicit_pays(const Conv2dParams& p) {
  return !cpu::is_pointwise(p) && p.P * p.Q >= 64 &&
         cpu::implicit_forward_fits(cpu::as_conv3d(p));
}

// Backward-data at unit stride as the implicit forward on dy: dilated layers (col2im's dilated
// scatter) and planes of 32x32 and up (16->16 on 56x56: 0.91 vs GEMM 0.71 of torch; on small
// deep planes the GEMM wins: 512 ch on 8x8 0.92 vs 0.58).
bool implicit_data_pays(const Conv2dParams& p) {
  const Conv3dParams q = cpu::as_conv3d(p);
  if (cpu::implicit_phases_pay(q, get_num_threads())) return true;  // strided: its phases
  if (!(p.dil_h > 1 || p.dil_w > 1 || p.H * p.W >= 1024)) return false;
  return cpu::implicit_data_applies(q) &&
         cpu::implicit_forward_fits(cpu::implicit_data_params(q));
}

// Few output channels at unit stride: the register-blocked direct kernels fill their 3- or
// 6-channel tiles where the implicit GEMM's 16-channel tiles run K/16 full (2 threads: LeNet C1
// 1->6 5x5 forward 0.27 vs 0.67 ms, weight gradient 0.39 vs 0.63; 4->8 7x7 forward 1.03 vs
// 1.41). Backward-data is the same kernel on dy with C outputs (LeNet C3 16->6: 0.67 vs GEMM
// 0.87 ms; 64->4 3x3, K·R·S = 576: GEMM 0.63 vs 0.70). Filters up to 512 taps deep measured.
// Filters of 64+ taps go direct at any depth and batch: GEMM's im2col (or the data pass's
// scatter) grows with the taps while the direct kernel streams them (2 threads, auto / direct
// ms, forward | backward-data: 1->1 31x31 on 128x128 7.5/0.42 | 9.7/0.43; 3->8 9x9 on 224x224,
// one image, 27.2/2.3 | 75.4/2.0; 3->8 31x31 on 64x64, batch 8, 15.8/3.5 | 76.4/7.6; 64->8
// 15x15 on 64x64 22.2/7.1; data 4<-32 9x9, batch 4, 11.7/1.9; 8x8 filters, 3->4 batch 8: equal).
constexpr int64_t kDirectBigFilterTaps = 64;
bool direct_block_pays(const Conv2dParams& p, bool weight_grad) {
  return p.groups == 1 && cpu::direct_block_applies(p, weight_grad) && p.K <= 8 &&
         (weight_grad || (p.C * p.R * p.S <= 512 && p.N >= get_num_threads()) ||
          p.R * p.S >= kDirectBigFilterTaps);
}
bool direct_block_data_pays(const Conv2dParams& p) {
  return p.groups == 1 && cpu::direct_block_data_applies(p) && p.C <= 8 &&
         ((p.K * p.R * p.S <= 512 && p.N >= get_num_threads()) ||
          p.R * p.S >= kDirectBigFilterTaps);
}

// Where the implicit tile is one of AVX-512's wide ones (8x32, or 6x64: channel side a multiple
// of 32; measured with 8x32, 6x64 only faster), it beats Winograd on layers of at most 32
// channels and on dilated layers of at most 64 (2 threads, batch 8-16, Winograd / implicit ms,
// forward; backward-data alike: 32 ch on 64x64 7.7 / 4.7, on 128x128
// 12.6 / 9.5; 64 ch dilation 4 on 64x64 11.4 / 9.3, dilation 8 21.6 / 10.9, dilation 2 on 56x56
// 9.0 / 7.2, on 128x128 38.9 / 39.4; undilated 64 ch stays Winograd: on 32x32 4.2 / 4.6, on 64x64
// 7.8 / 9.8; 96 ch dilation 2 on 48x48 11.3 / 12.5). The AVX2 tile keeps Winograd (dilation 4:
// implicit 1.16x slower).
template <class T>
bool wide_implicit_beats_winograd(const Conv2dParams& p, bool backward_data) {
  const int64_t side = backward_data ? p.Cg() : p.Kg(), most = std::max(p.Cg(), p.Kg());
  return implicit_tile_kernel<T>(side).nr > 16 &&
         (most <= 32 || (most <= 64 && (p.dil_h > 1 || p.dil_w > 1)));
}

template <class T>
ConvAlgo resolve(const Conv2dParams& p, ConvAlgo algo, bool backward_data = false) {
  if (algo == ConvAlgo::implicit && backward_data)  // the forward on dy, or its stride phases
    return cpu::implicit_data_applies(cpu::as_conv3d(p)) ||
                   cpu::implicit_phases_apply(cpu::as_conv3d(p))
               ? algo
               : ConvAlgo::gemm;
  if (algo != ConvAlgo::automatic) return algo;
  if (depthwise(p)) return ConvAlgo::direct;
  if (backward_data ? direct_block_data_pays(p) : direct_block_pays(p, false))
    return ConvAlgo::direct;
  const bool implicit = backward_data ? implicit_data_pays(p) : implicit_pays(p);
  if (winograd_pays(p, backward_data) &&
      !(implicit && wide_implicit_beats_winograd<T>(p, backward_data)))
    return ConvAlgo::winograd;
  return implicit ? ConvAlgo::implicit : ConvAlgo::gemm;
}

// Weight gradient: direct for depthwise and small-K layers (direct_block_pays); 3x3 stride-1
// undilated layers where the forward's Winograd rule holds run Winograd F(2x2,3x3)
// (winograd_weight_pays); 1x1 stride-1 layers run GEMM on the image itself; the rest run the
// implicit GEMM (no im2col: 1.4-1.8x torch where im2col+GEMM was 0.5-0.9x). Explicit 'winograd'
// on a shape its weight gradient does not take (dilated) runs GEMM for this pass.
// Where the implicit tile is AVX-512's 8x32 (Kg a multiple of 32), it beats Winograd's weight
// gradient below 128 channels (2 threads, Winograd / implicit ms: 64 ch on 56x56, batch 32:
// 62.1 / 52.5; on 28x28: 21.0 / 13.4; 96 on 28x28, batch 16: 15.4 / 14.8; 128: 21.3 / 25.4).
template <class T>
ConvAlgo resolve_weight(const Conv2dParams& p, ConvAlgo algo) {
  if (is_winograd(algo))  // a shape Winograd's weight gradient does not take: GEMM
    return cpu::winograd_weight_applies(cpu::as_conv3d(p)) ? algo : ConvAlgo::gemm;
  if (algo == ConvAlgo::automatic) {
    if (depthwise(p) || direct_block_pays(p, true)) return ConvAlgo::direct;
    const bool wide_tile = implicit_tile_kernel<T>(p.Kg()).nr > 16;
    if (cpu::winograd_weight_pays(cpu::as_conv3d(p)) &&
        !(wide_tile && std::min(p.Cg(), p.Kg()) < 128))
      return ConvAlgo::winograd;
    // Tiny planes and very deep filters go to the batched GEMM (conv2d_gemm_small): 512 ch 3x3,
    // batch 16, 2 threads: on 4x4 GEMM 12.5 ms vs implicit 17.3; on 8x8 1.06x vs 0.96x torch
    // (256 ch on 7x7: 0.95x vs 1.00x).
    return !cpu::is_pointwise(p) && p.P * p.Q >= 32 && p.Cg() * p.R * p.S < 4096 &&
                   cpu::implicit_weight_fits(cpu::as_conv3d(p), get_num_threads())
               ? ConvAlgo::implicit
               : ConvAlgo::gemm;
  }
  return algo;
}

}  // namespace

template <class T>
void conv2d_forward(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                    ConvAlgo algo, Activation act) {
  const ConvAlgo a = resolve<T>(p, algo);
  if (is_winograd(a))
    return cpu::conv_forward_winograd(cpu::as_conv3d(p), y, x, w, b, act, winograd_tile_of(a));
  switch (a) {
    case ConvAlgo::ref:  // the naive twin: activation as a separate pass over the output
      ref::conv2d_forward(p, y, x, w, b);
      if (act == Activation::relu) cpu::bias_act(y, p.N * p.K * p.P * p.Q, T(0), act);
      return;
    case ConvAlgo::direct: return cpu::conv2d_forward_direct(p, y, x, w, b, act);
    case ConvAlgo::implicit: return cpu::conv_forward_implicit(cpu::as_conv3d(p), y, x, w, b, act);
    default: return cpu::conv2d_forward_gemm(p, y, x, w, b, act);
  }
}

template <class T>
void relu_backward_mask(int64_t count, T* dz, const T* dy, const T* y) {
  // y > 0 exactly where the pre-activation was > 0: relu's backward on the saved output,
  // threaded and vectorized (the dispatched leaky-ReLU kernel with slope 0).
  activation_backward<T>(Elementwise::relu, count, dz, dy, y, 0.0);
}

template <class T>
void conv2d_backward_data(const Conv2dParams& p, T* dx, const T* dy, const T* w, ConvAlgo algo) {
  const ConvAlgo a = resolve<T>(p, algo, /*backward_data=*/true);
  if (is_winograd(a))
    return cpu::conv_backward_data_winograd(cpu::as_conv3d(p), dx, dy, w, winograd_tile_of(a));
  switch (a) {
    case ConvAlgo::ref: return ref::conv2d_backward_data(p, dx, dy, w);
    case ConvAlgo::direct: return cpu::conv2d_backward_data_direct(p, dx, dy, w);
    case ConvAlgo::implicit:
      return cpu::conv_backward_data_implicit(cpu::as_conv3d(p), dx, dy, w);
    default: return cpu::conv2d_backward_data_gemm(p, dx, dy, w);
  }
}

template <class T>
void conv2d_backward_weight(const Conv2dParams& p, T* dw, T* db, const T* dy, const T* x,
                            ConvAlgo algo) {
  const ConvAlgo a = resolve_weight<T>(p, algo);
  if (is_winograd(a)) {
    if (dw) cpu::conv_backward_weight_winograd(cpu::as_conv3d(p), dw, dy, x, winograd_tile_of(a));
    if (db) cpu::accumulate_channel_sums(p.N, p.K, p.P * p.Q, db, dy);
    return;
  }
  switch (a) {
    case ConvAlgo::ref: return ref::conv2d_backward_weight(p, dw, db, dy, x);
    case ConvAlgo::direct: return cpu::conv2d_backward_weight_direct(p, dw, db, dy, x);
    case ConvAlgo::implicit:
      return cpu::conv_backward_weight_implicit(cpu::as_conv3d(p), dw, db, dy, x);
    default: return cpu::conv2d_backward_weight_gemm(p, dw, db, dy, x);
  }
}

#define CNNFAST_INSTANTIATE(T)                                                                 \
  template void conv2d_forward<T>(const Conv2dParams&, T*, const T*, const T*, const T*,       \
                                  ConvAlgo, Activation);                                       \
  template void relu_backward_mask<T>(int64_t, T*, const T*, const T*);                        \
  template void conv2d_backward_data<T>(const Conv2dParams&, T*, const T*, const T*, ConvAlgo); \
  template void conv2d_backward_weight<T>(const Conv2dParams&, T*, T*, const T*, const T*,      \
                                          ConvAlgo);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast
