// dispatch.h — the one place that maps the active ISA to kernels. Loops ask here, never cpuid.
#pragma once
#include "cpu/kernels/eltwise_ukernel.h"
#include "cpu/kernels/gemm_ukernel.h"

namespace cnnfast {

template <class T>
const GemmKernel<T>& gemm_kernel();  // the active ISA's GEMM microkernel + blocking

template <class T>
const EltwiseKernel<T>& eltwise_kernel();  // the active ISA's elementwise microkernels

}  // namespace cnnfast
