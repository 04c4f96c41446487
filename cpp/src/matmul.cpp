// matmul.cpp — matmul forward/backward: three GEMM calls with strides, no transposed copies.
#include "cnnfast/matmul.h"

#include "cnnfast/runtime.h"
#include "cpu/gemm.h"

namespace cnnfast {

template <class T>
void matmul_forward(int64_t M, int64_t N, int64_t K, T* c, const T* a, const T* b) {
  gemm(M, N, K, a, K, 1, b, N, 1, c, N, false, get_num_threads());
}

template <class T>
void matmul_backward(int64_t M, int64_t N, int64_t K, T* da, T* db, const T* dc, const T* a,
                     const T* b) {
  const int nt = get_num_threads();
  if (da) gemm(M, K, N, dc, N, 1, b, 1, N, da, K, false, nt);  // dc (M,N) · bᵀ (N,K)
  if (db) gemm(K, N, M, a, 1, K, dc, N, 1, db, N, false, nt);  // aᵀ (K,M) · dc (M,N)
}

template void matmul_forward<float>(int64_t, int64_t, int64_t, float*, const float*, const float*);
template void matmul_forward<double>(int64_t, int64_t, int64_t, double*, const double*,
                                     const double*);
template void matmul_backward<float>(int64_t, int64_t, int64_t, float*, float*, const float*,
                                     const float*, const float*);
template void matmul_backward<double>(int64_t, int64_t, int64_t, double*, double*, const double*,
                                      const double*, const double*);

}  // namespace cnnfast
