// conv2d_direct_rows__avx512.cpp — the direct-convolution row microkernels built for avx512
// (the shared loops of conv2d_direct_rows_impl.h, vectorized with this file's ISA flags).
#include "cpu/kernels/conv2d_direct_rows.h"

namespace cnnfast {
namespace {
#include "cpu/kernels/conv2d_direct_rows_impl.h"
}  // namespace

const DirectRowKernels<float> conv2d_direct_rows_f32__avx512 = {
    "conv2d_direct_rows_f32__avx512", direct_fwd<float>, direct_bwd_data<float>,
    direct_bwd_weight<float>};
const DirectRowKernels<double> conv2d_direct_rows_f64__avx512 = {
    "conv2d_direct_rows_f64__avx512", direct_fwd<double>, direct_bwd_data<double>,
    direct_bwd_weight<double>};

}  // namespace cnnfast
