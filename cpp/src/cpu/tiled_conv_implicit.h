// tiled_conv_implicit.h — tiled convolution with few banks as an implicit GEMM: the conv tile
// microkernel reads each position's window straight from a zero-padded image (see the .cpp).
#pragma once
#include "cnnfast/conv_family.h"

namespace cnnfast::cpu {

// 'auto' runs it when every bank has many positions per image (not the locally connected case,
// whose one position per image and bank would leave the tiles' rows empty) and one bank's packed
// weights stay in L2.
bool tiled_implicit_pays(const TiledConvParams& p);
// Backward-data runs as the same forward on dy at unit stride (padding <= dil·(k-1)).
bool tiled_implicit_data_applies(const TiledConvParams& p);

template <class T>
void tiled_conv_forward_implicit(const TiledConvParams& p, T* y, const T* x, const T* w,
                                 const T* b);
template <class T>
void tiled_conv_backward_data_implicit(const TiledConvParams& p, T* dx, const T* dy, const T* w);
// dw += the weight gradient (dw (TD, TH, TW, K, C, taps)), db += the bias gradient (either may
// be null; tiled biases are summed from the transposed dY the weight tiles read).
template <class T>
void tiled_conv_backward_weight_implicit(const TiledConvParams& p, T* dw, T* db, const T* dy,
                                         const T* x);

}  // namespace cnnfast::cpu
