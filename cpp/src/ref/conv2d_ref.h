// conv2d_ref.h — naive conv2d twins: direct loops over the textbook formula, no blocking, no SIMD,
// no threads. The correctness anchor for the fast paths (tests, C++ benchmark validation).
#pragma once
#include "cnnfast/conv.h"

namespace cnnfast::ref {

template <class T>
void conv2d_forward(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b);
template <class T>
void conv2d_backward_data(const Conv2dParams& p, T* dx, const T* dy, const T* w);
template <class T>
void conv2d_backward_weight(const Conv2dParams& p, T* dw, T* db, const T* dy, const T* x);

}  // namespace cnnfast::ref
