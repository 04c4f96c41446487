// winograd_f2x3_rows__avx2.cpp — the Winograd F(2x2,3x3) row transforms built for avx2
// (the shared loops of winograd_f2x3_rows_impl.h, vectorized with this file's ISA flags).
#include "cpu/kernels/winograd_rows.h"

namespace cnnfast {
namespace {
#include "cpu/kernels/winograd_f2x3_rows_impl.h"
}  // namespace

const WinogradRowKernels<float> winograd_f2x3_rows_f32__avx2 = {
    "winograd_f2x3_rows_f32__avx2", 2, wino_input_row<float>, wino_output_row<float>,
    wino_adjoint_output_row<float>};
const WinogradRowKernels<double> winograd_f2x3_rows_f64__avx2 = {
    "winograd_f2x3_rows_f64__avx2", 2, wino_input_row<double>, wino_output_row<double>,
    wino_adjoint_output_row<double>};

}  // namespace cnnfast
