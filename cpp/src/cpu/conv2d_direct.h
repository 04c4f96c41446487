// conv2d_direct.h — direct convolution on zero-padded planes (see conv2d_direct.cpp). Any
// groups/stride/padding/dilation; fast where GEMM packing dominates: depthwise and tiny C.
#pragma once
#include <algorithm>
#include <cstring>

#include "cnnfast/conv.h"

namespace cnnfast::cpu {

// xp (planes, H + pad_top + pad_bottom, ld) = x (planes, H, W) placed at (pad_top, pad_left),
// zeros elsewhere; ld >= W + pad_left + pad_right (wider rows: zero columns on the right).
template <class T>
void pad_planes(const Conv2dParams& p, int64_t planes, int64_t ld, const T* x, T* xp) {
  const int64_t plane = (p.H + p.pad_top + p.pad_bottom) * ld;
  for (int64_t c = 0; c < planes; ++c) {
    T* dst = xp + c * plane;
    std::fill(dst, dst + p.pad_top * ld, T(0));
    for (int64_t h = 0; h < p.H; ++h) {
      T* row = dst + (p.pad_top + h) * ld;
      std::fill(row, row + p.pad_left, T(0));
      std::memcpy(row + p.pad_left, x + (c * p.H + h) * p.W, sizeof(T) * p.W);
      std::fill(row + p.pad_left + p.W, row + ld, T(0));
    }
    std::fill(dst + (p.pad_top + p.H) * ld, dst + plane, T(0));
  }
}

template <class T>
void conv2d_forward_direct(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                           Activation act = Activation::none);
template <class T>
void conv2d_backward_data_direct(const Conv2dParams& p, T* dx, const T* dy, const T* w);
template <class T>
void conv2d_backward_weight_direct(const Conv2dParams& p, T* dw, T* db, const T* dy, const T* x);

// The register-blocked form (conv2d_direct_block.cpp) the three above take at unit stride and
// dilation, any groups (and, for the weight gradient, filters up to kDirectBlockMaxS wide) —
// unless the depthwise form below takes the layer.
bool direct_block_applies(const Conv2dParams& p, bool weight_grad);
template <class T>
void conv2d_forward_direct_block(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                                 Activation act);
bool direct_block_data_applies(const Conv2dParams& p);  // also padding < the filter size
template <class T>
void conv2d_backward_data_direct_block(const Conv2dParams& p, T* dx, const T* dy, const T* w);
template <class T>
void conv2d_backward_weight_direct_block(const Conv2dParams& p, T* dw, T* db, const T* dy,
                                         const T* x);

// The depthwise form (conv2d_depthwise.cpp): one input channel per group at any stride and
// dilation — every such layer with one output per group, and those with several where the
// register-blocked form does not apply (its channel tiles share the loads). Backward-data takes
// every one-input-channel layer (depthwise_rows_data_apply): with several outputs per group its
// taps span the group's dy planes (1 image, 64 -> 128 3x3 on 56x56: 0.13 ms vs the block's 0.25).
bool depthwise_rows_apply(const Conv2dParams& p, bool weight_grad);
bool depthwise_rows_data_apply(const Conv2dParams& p);
template <class T>
void conv2d_forward_depthwise(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                              Activation act);
template <class T>
void conv2d_backward_data_depthwise(const Conv2dParams& p, T* dx, const T* dy, const T* w);
template <class T>
void conv2d_backward_weight_depthwise(const Conv2dParams& p, T* dw, T* db, const T* dy,
                                      const T* x);

}  // namespace cnnfast::cpu
