// conv2d_gemm.h — the im2col + GEMM convolution algorithm (see conv2d_gemm.cpp).
#pragma once
#include "cnnfast/conv.h"

namespace cnnfast::cpu {

template <class T>
void conv2d_forward_gemm(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                         Activation act = Activation::none);
template <class T>
void conv2d_backward_data_gemm(const Conv2dParams& p, T* dx, const T* dy, const T* w);
template <class T>
void conv2d_backward_weight_gemm(const Conv2dParams& p, T* dw, T* db, const T* dy, const T* x);

}  // namespace cnnfast::cpu
