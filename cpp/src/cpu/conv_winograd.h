// conv_winograd.h — Winograd F(2x2, 3x3) and F(4x4, 3x3) for convolutions with a 3x3 spatial
// kernel at unit spatial stride: conv2d (D = KD = 1) and conv3d (any KD, depth stride and
// dilation; the depth taps sum inside the transformed-domain GEMMs), forward and backward-data;
// dilated planes split into phases (conv_winograd.cpp); the weight gradient of undilated 2-D
// layers (conv_winograd_weight.cpp). 2.25x (F2) or 4x (F4) fewer multiplies than GEMM.
#pragma once
#include "cnnfast/conv.h"
#include "cnnfast/conv_family.h"

namespace cnnfast::cpu {

// Forward applies; backward-data also needs unit stride on every axis and padding <=
// dilation·(k-1) (it runs as the forward on dy with flipped filters).
bool winograd_applies(const Conv3dParams& p, bool backward_data);
// 'auto' rule: applies, and the transformed GEMMs have depth and planes to amortise the
// transforms (measurements in conv_winograd.cpp).
bool winograd_pays(const Conv3dParams& p, bool backward_data);
// Output tile side 'winograd' uses when none is asked for: 4 or 2 (rule in conv_winograd.cpp).
int winograd_tile(const Conv3dParams& p);

// y (N, K, OD, OH, OW) = act(conv(x, w) + b); b may be null. tile: 2, 4 or 0 (winograd_tile).
template <class T>
void conv_forward_winograd(const Conv3dParams& p, T* y, const T* x, const T* w, const T* b,
                           Activation act = Activation::none, int tile = 0);
// dx (N, C, D, H, W) = the adjoint of the forward applied to dy (N, K, OD, OH, OW).
template <class T>
void conv_backward_data_winograd(const Conv3dParams& p, T* dx, const T* dy, const T* w,
                                 int tile = 0);

// Weight gradient (conv_winograd_weight.cpp): 2-D (D = KD = 1), 3x3, stride 1, dilation 1.
bool winograd_weight_applies(const Conv3dParams& p);
bool winograd_weight_pays(const Conv3dParams& p);  // 'auto' rule
// dw (K, Cg, 3, 3) += dL/dw for dy (N, K, OH, OW), x (N, C, H, W). tile: 2, 4 or 0 (the
// forward's winograd_tile, F2 where F4's transformed gradient would pass 16 MiB).
template <class T>
void conv_backward_weight_winograd(const Conv3dParams& p, T* dw, const T* dy, const T* x,
                                   int tile = 0);

}  // namespace cnnfast::cpu
