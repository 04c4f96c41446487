// pool_dispatch.h — the active ISA's pooling microkernels (same rule as cpu/dispatch.h: loops ask
// here, never cpuid). f64 uses the scalar kernels on every ISA.
#pragma once
#include "cpu/kernels/pool_ukernel.h"

namespace cnnfast {

// Planes of 2^31 elements or more take the scalar kernels (SIMD lanes hold int32 indices).
template <class T>
const PoolKernels<T>& pool_kernels(int64_t plane_elems);

}  // namespace cnnfast
