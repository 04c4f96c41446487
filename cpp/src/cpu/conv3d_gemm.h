// conv3d_gemm.h — the vol2col + GEMM 3-D convolution algorithm (see conv3d_gemm.cpp).
#pragma once
#include "cnnfast/conv_family.h"

namespace cnnfast::cpu {

template <class T>
void conv3d_forward_gemm(const Conv3dParams& p, T* y, const T* x, const T* w, const T* b);
template <class T>
void conv3d_backward_data_gemm(const Conv3dParams& p, T* dx, const T* dy, const T* w);
template <class T>
void conv3d_backward_weight_gemm(const Conv3dParams& p, T* dw, T* db, const T* dy, const T* x);

}  // namespace cnnfast::cpu
