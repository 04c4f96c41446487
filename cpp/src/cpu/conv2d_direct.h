// conv2d_direct.h — direct convolution on zero-padded planes (see conv2d_direct.cpp). Any
// groups/stride/padding/dilation; fast where GEMM packing dominates: depthwise and tiny C.
#pragma once
#include "cnnfast/conv.h"

namespace cnnfast::cpu {

template <class T>
void conv2d_forward_direct(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                           Activation act = Activation::none);
template <class T>
void conv2d_backward_data_direct(const Conv2dParams& p, T* dx, const T* dy, const T* w);
template <class T>
void conv2d_backward_weight_direct(const Conv2dParams& p, T* dw, T* db, const T* dy, const T* x);

// The register-blocked form (conv2d_direct_block.cpp) the two above take for groups = 1 at unit
// stride and dilation (and, for the weight gradient, filters up to kDirectBlockMaxS wide).
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

}  // namespace cnnfast::cpu
