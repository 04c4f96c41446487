// conv2d_depthwise_rows__avx2.cpp — the f32 depthwise row kernels built with this file's avx2
// flags (the 8-lane source of conv2d_depthwise_rows_avx2_impl.h).
#include <immintrin.h>

#include "cpu/kernels/conv2d_depthwise_rows.h"

namespace cnnfast {
namespace {
#include "cpu/kernels/avx2_lanes_impl.h"
#include "cpu/kernels/conv2d_depthwise_rows_avx2_impl.h"
}  // namespace

const DepthwiseRowKernels<float> conv2d_depthwise_rows_f32__avx2 = {
    "conv2d_depthwise_rows_f32__avx2", 8, &fwd, &bwd_weight};

}  // namespace cnnfast
