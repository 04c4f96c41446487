// conv2d_gemm_small.h — im2col + GEMM for small images: several images share one GEMM (see .cpp).
#pragma once
#include <cstdint>

#include "cnnfast/conv.h"

namespace cnnfast::cpu {

// Columns below which one image's GEMM does not amortise packing its group's weights: every
// GEMM packs all of W_g (Kg x CgRS), so deep filters on small planes (ResNet/VGG's 512 x 3x3
// layers on 4x4 and 8x8 maps) would repack 9 MiB of weights per image.
constexpr int64_t kMinGemmCols = 256;

// True when at least two whole images' columns fit the per-thread column budget `len`, or one
// image has too few columns to amortise the weight packing (then blocks of images share it).
inline bool small_images(const Conv2dParams& p, int64_t len) {
  return p.N > 1 && (2 * p.P * p.Q <= len || p.P * p.Q < kMinGemmCols);
}

template <class T>
void conv2d_forward_gemm_small(const Conv2dParams& p, int64_t len, T* y, const T* x, const T* w,
                               const T* b, Activation act);
template <class T>
void conv2d_backward_data_gemm_small(const Conv2dParams& p, int64_t len, T* dx, const T* dy,
                                     const T* w);
template <class T>
void conv2d_backward_weight_gemm_small(const Conv2dParams& p, int64_t len, T* dw, const T* dy,
                                       const T* x);

}  // namespace cnnfast::cpu
