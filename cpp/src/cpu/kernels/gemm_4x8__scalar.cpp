// gemm_4x8__scalar.cpp — portable reference microkernels (f32 4x8, f64 4x4); the fallback on any
// CPU and the twin the SIMD kernels are tested against. Built for the baseline ISA only.
#include "cpu/kernels/gemm_ukernel.h"

namespace cnnfast {
namespace {

template <class T, int MR, int NR>
void gemm_ukernel_scalar(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t mr,
                         int64_t nr, bool accumulate) {
  T acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
    a += MR;
    b += NR;
  }
  store_edge_tile(&acc[0][0], NR, c, ldc, mr, nr, accumulate);
}

}  // namespace

const GemmKernel<float> gemm_f32_4x8__scalar = {"gemm_f32_4x8__scalar", 4, 8, 128, 256, 2048,
                                                gemm_ukernel_scalar<float, 4, 8>,
                                                gemm_pack_rows_generic<float, 8>};
const GemmKernel<double> gemm_f64_4x4__scalar = {"gemm_f64_4x4__scalar", 4, 4, 128, 256, 2048,
                                                 gemm_ukernel_scalar<double, 4, 4>,
                                                 gemm_pack_rows_generic<double, 4>};

}  // namespace cnnfast
