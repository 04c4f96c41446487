// conv2d_implicit.h — implicit-GEMM convolution forward (see conv2d_implicit.cpp).
#pragma once
#include "cnnfast/conv.h"

namespace cnnfast::cpu {

// Whether the implicit path runs this layer well: enough images (or groups) to give every thread
// one, and the packed weights of one group small enough to stay in L2 while a row is swept.
bool implicit_forward_fits(const Conv2dParams& p, int nthreads);

template <class T>
void conv2d_forward_implicit(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                             Activation act = Activation::none);

}  // namespace cnnfast::cpu
