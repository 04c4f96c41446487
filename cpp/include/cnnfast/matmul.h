// matmul.h — the public C++ API of the 2-D matrix product on the packed GEMM.
// Layouts (row-major): a is (M, K), b is (K, N), c is (M, N). Both inputs are activations, so the
// backward overwrites (=) da and db; either may be null to skip it.
#pragma once
#include <cstdint>

namespace cnnfast {

// c = a · b
template <class T>
void matmul_forward(int64_t M, int64_t N, int64_t K, T* c, const T* a, const T* b);
// da = dc · bᵀ (M, K), db = aᵀ · dc (K, N); dc is (M, N).
template <class T>
void matmul_backward(int64_t M, int64_t N, int64_t K, T* da, T* db, const T* dc, const T* a,
                     const T* b);

}  // namespace cnnfast
