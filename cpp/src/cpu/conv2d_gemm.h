// conv2d_gemm.h — the im2col + GEMM convolution algorithm (see conv2d_gemm.cpp).
#pragma once
#include "cnnfast/conv.h"

namespace cnnfast::cpu {

// 1x1, stride 1, no padding: the image itself is the column matrix (no im2col).
inline bool is_pointwise(const Conv2dParams& p) {
  return p.R == 1 && p.S == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_top == 0 &&
         p.pad_left == 0 && p.pad_bottom == 0 && p.pad_right == 0;
}

// Every GEMM of a call has the same A per group: the weights (Kg, Cg*R*S), or their transpose
// for dx. pack_weights_once packs them for all groups into one shared, read-only buffer
// (gemm_pack_a layout, `stride` elements a group) so that no chunk or thread repacks them.
template <class T>
const T* pack_weights_once(const Conv2dParams& p, const T* w, bool transposed, int nt,
                           int64_t& stride);

template <class T>
void conv2d_forward_gemm(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                         Activation act = Activation::none);
template <class T>
void conv2d_backward_data_gemm(const Conv2dParams& p, T* dx, const T* dy, const T* w);
template <class T>
void conv2d_backward_weight_gemm(const Conv2dParams& p, T* dw, T* db, const T* dy, const T* x);

}  // namespace cnnfast::cpu
