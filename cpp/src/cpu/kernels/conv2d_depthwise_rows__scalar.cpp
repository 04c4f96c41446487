// conv2d_depthwise_rows__scalar.cpp — the portable depthwise row kernels (contract in
// conv2d_depthwise_rows.h): the scalar fallback for f32 and the f64 kernels on every ISA.
#include "cpu/kernels/conv2d_depthwise_rows.h"

namespace cnnfast {

const DepthwiseRowKernels<float> conv2d_depthwise_rows_f32__scalar = {
    "conv2d_depthwise_rows_f32__scalar", 1, &depthwise_fwd_generic<float>,
    &depthwise_bwd_weight_generic<float>};
const DepthwiseRowKernels<double> conv2d_depthwise_rows_f64__scalar = {
    "conv2d_depthwise_rows_f64__scalar", 1, &depthwise_fwd_generic<double>,
    &depthwise_bwd_weight_generic<double>};

}  // namespace cnnfast
