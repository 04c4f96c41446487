// conv2d_winograd.h — Winograd F(2x2, 3x3) for 3x3, stride-1, undilated conv2d (forward and
// backward-data; see conv2d_winograd.cpp). 2.25x fewer multiplies than direct/GEMM.
#pragma once
#include "cnnfast/conv.h"

namespace cnnfast::cpu {

// Forward applies; backward-data also needs every padding <= 2 (it runs as a forward conv).
bool winograd_applies(const Conv2dParams& p, bool backward_data);

template <class T>
void conv2d_forward_winograd(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                             Activation act = Activation::none);
template <class T>
void conv2d_backward_data_winograd(const Conv2dParams& p, T* dx, const T* dy, const T* w);

}  // namespace cnnfast::cpu
