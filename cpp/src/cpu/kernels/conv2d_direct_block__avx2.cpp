// conv2d_direct_block__avx2.cpp — the f32 direct-block kernels built with this file's avx2 flags
// (the 8-lane source of conv2d_direct_block_avx2_impl.h).
#include <immintrin.h>

#include "cpu/kernels/conv2d_direct_block.h"

namespace cnnfast {
namespace {
#include "cpu/kernels/avx2_lanes_impl.h"
#include "cpu/kernels/conv2d_direct_block_avx2_impl.h"
}  // namespace

const DirectBlockKernels<float> conv2d_direct_block_f32__avx2 = {
    "conv2d_direct_block_f32__avx2", 8, &fwd, &bwd_weight};

}  // namespace cnnfast
