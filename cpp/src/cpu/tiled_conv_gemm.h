// tiled_conv_gemm.h — tiled / locally connected convolution as one GEMM per kernel bank over the
// gathered columns of that bank's output positions, batched over images (see the .cpp).
#pragma once
#include "cnnfast/conv_family.h"

namespace cnnfast::cpu {

template <class T>
void tiled_conv_forward_gemm(const TiledConvParams& p, T* y, const T* x, const T* w, const T* b);
template <class T>
void tiled_conv_backward_data_gemm(const TiledConvParams& p, T* dx, const T* dy, const T* w);
template <class T>
void tiled_conv_backward_weight_gemm(const TiledConvParams& p, T* dw, T* db, const T* dy,
                                     const T* x);
// db += Σ dy per bank and channel (tiled) or per channel and position (locally connected).
template <class T>
void tiled_conv_bias_grad(const TiledConvParams& p, T* db, const T* dy);

}  // namespace cnnfast::cpu
