// conv2d_direct_block__scalar.cpp — the portable direct-block kernels (contract in
// conv2d_direct_block.h): the scalar fallback for f32 and the f64 kernels on every ISA.
#include "cpu/kernels/conv2d_direct_block.h"

namespace cnnfast {

const DirectBlockKernels<float> conv2d_direct_block_f32__scalar = {
    "conv2d_direct_block_f32__scalar", 1, &direct_block_fwd_generic<float>,
    &direct_block_bwd_weight_generic<float>};
const DirectBlockKernels<double> conv2d_direct_block_f64__scalar = {
    "conv2d_direct_block_f64__scalar", 1, &direct_block_fwd_generic<double>,
    &direct_block_bwd_weight_generic<double>};

}  // namespace cnnfast
