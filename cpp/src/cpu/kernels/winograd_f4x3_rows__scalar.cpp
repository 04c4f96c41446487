// winograd_f4x3_rows__scalar.cpp — the Winograd F(4x4,3x3) row transforms built for scalar
// (the shared loops of winograd_f4x3_rows_impl.h, vectorized with this file's ISA flags).
#include "cpu/kernels/winograd_rows.h"

namespace cnnfast {
namespace {
#include "cpu/kernels/winograd_f4x3_rows_impl.h"
}  // namespace

const WinogradRowKernels<float> winograd_f4x3_rows_f32__scalar = {
    "winograd_f4x3_rows_f32__scalar", 4, wino_input_row<float>, wino_output_row<float>,
    wino_adjoint_output_row<float>};
const WinogradRowKernels<double> winograd_f4x3_rows_f64__scalar = {
    "winograd_f4x3_rows_f64__scalar", 4, wino_input_row<double>, wino_output_row<double>,
    wino_adjoint_output_row<double>};

}  // namespace cnnfast
