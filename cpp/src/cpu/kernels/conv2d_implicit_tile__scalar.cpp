// conv2d_implicit_tile__scalar.cpp — the implicit-GEMM conv tiles built for scalar (the shared
// loops of conv2d_implicit_tile_impl.h, vectorized with this file's ISA flags).
#include <algorithm>

#include "cpu/kernels/conv2d_implicit_tile.h"

namespace cnnfast {
namespace {
#include "cpu/kernels/conv2d_implicit_tile_impl.h"
}  // namespace

const ImplicitTileKernel<float> conv2d_implicit_f32_6x16__scalar = {
    "conv2d_implicit_f32_6x16__scalar", 6, 16, implicit_tile_6x16<float>,
    store_channels_rows<float, 16>, transpose_rows<float>,
    interleave2_rows<float>, deinterleave2_rows<float>};
const ImplicitTileKernel<double> conv2d_implicit_f64_6x16__scalar = {
    "conv2d_implicit_f64_6x16__scalar", 6, 16, implicit_tile_6x16<double>,
    store_channels_rows<double, 16>, transpose_rows<double>,
    interleave2_rows<double>, deinterleave2_rows<double>};

}  // namespace cnnfast
