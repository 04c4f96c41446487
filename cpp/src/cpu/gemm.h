// gemm.h — the blocked, packed GEMM framework (BLIS's five loops around a microkernel).
// C (m x n, row stride ldc) = [C +] A (m x k) · B (k x n), with A and B given by element strides:
//   A(i, p) = a[i*rsa + p*csa],  B(p, j) = b[p*rsb + j*csb]
// so transposed operands need no copy. nthreads > 1 splits C into disjoint thread blocks.
#pragma once
#include <cstdint>

namespace cnnfast {

template <class T>
void gemm(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b,
          int64_t rsb, int64_t csb, T* c, int64_t ldc, bool accumulate, int nthreads);

}  // namespace cnnfast
