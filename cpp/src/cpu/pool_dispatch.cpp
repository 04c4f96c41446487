// pool_dispatch.cpp — maps isa_active() (cpu/dispatch.cpp) to the pooling kernel table.
#include "cpu/pool_dispatch.h"

#include "cnnfast/runtime.h"

namespace cnnfast {

template <>
const PoolKernels<float>& pool_kernels<float>(int64_t plane_elems) {
  if (plane_elems >= (int64_t(1) << 31)) return pool_f32__scalar;
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512: return pool_f32__avx512;
    case Isa::avx2: return pool_f32__avx2;
#endif
    default: return pool_f32__scalar;
  }
}

template <>
const PoolKernels<double>& pool_kernels<double>(int64_t) {
  return pool_f64__scalar;
}

}  // namespace cnnfast
