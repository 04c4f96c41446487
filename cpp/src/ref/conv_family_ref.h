// conv_family_ref.h — naive twins of conv3d and tiled convolution: direct loops over the
// textbook formulas, no blocking, no SIMD, no threads. The correctness anchor of the fast paths.
#pragma once
#include "cnnfast/conv_family.h"

namespace cnnfast::ref {

template <class T>
void conv3d_forward(const Conv3dParams& p, T* y, const T* x, const T* w, const T* b);
template <class T>
void conv3d_backward_data(const Conv3dParams& p, T* dx, const T* dy, const T* w);
template <class T>
void conv3d_backward_weight(const Conv3dParams& p, T* dw, T* db, const T* dy, const T* x);

template <class T>
void tiled_conv_forward(const TiledConvParams& p, T* y, const T* x, const T* w, const T* b);
template <class T>
void tiled_conv_backward_data(const TiledConvParams& p, T* dx, const T* dy, const T* w);
template <class T>
void tiled_conv_backward_weight(const TiledConvParams& p, T* dw, T* db, const T* dy, const T* x);

}  // namespace cnnfast::ref
