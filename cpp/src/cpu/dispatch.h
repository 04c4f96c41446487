// dispatch.h — the one place that maps the active ISA to kernels. Loops ask here, never cpuid.
#pragma once
#include <cstdint>

#include "cpu/kernels/conv2d_depthwise_rows.h"
#include "cpu/kernels/conv2d_direct_block.h"
#include "cpu/kernels/conv2d_direct_rows.h"
#include "cpu/kernels/conv2d_implicit_tile.h"
#include "cpu/kernels/eltwise_ukernel.h"
#include "cpu/kernels/gemm_ukernel.h"
#include "cpu/kernels/peak_fma.h"
#include "cpu/kernels/softmax_ukernel.h"
#include "cpu/kernels/winograd_rows.h"

namespace cnnfast {

template <class T>
const GemmKernel<T>& gemm_kernel();  // the active ISA's GEMM microkernel + blocking
const PeakProbe& peak_probe();       // the active ISA's FP32 peak probe
template <class T>
const DirectRowKernels<T>& direct_row_kernels();  // the active ISA's direct-conv rows
template <class T>
const DirectBlockKernels<T>& direct_block_kernels();  // the active ISA's blocked direct conv
template <class T>
const DepthwiseRowKernels<T>& depthwise_row_kernels();  // ... and its depthwise rows
template <class T>
const WinogradRowKernels<T>& winograd_row_kernels(int m);  // the active ISA's F(m x m,3x3) rows
template <class T>
const ImplicitTileKernel<T>& implicit_tile_kernel();  // the active ISA's implicit-GEMM conv tile
// The same for a GEMM with `channels` columns (the tile's NR side) and a reduction `depth` steps
// long: where the ISA has a wider tile that leaves no column block part-empty (AVX-512 f32:
// 8x32 for channels % 32 == 0, 6x64 for channels % 64 == 0 and depth >= 128), that one.
template <class T>
const ImplicitTileKernel<T>& implicit_tile_kernel(int64_t channels,
                                                  int64_t depth = INT64_MAX);
template <class T>
const EltwiseKernel<T>& eltwise_kernel();  // the active ISA's elementwise microkernels
template <class T>
const SoftmaxKernel<T>& softmax_kernel();  // ... and its softmax tiles and rows

}  // namespace cnnfast
