// gemm_ukernel.h — the GEMM microkernel contract shared by every ISA file in this folder.
// A microkernel computes one MR x NR register tile: no threads, no allocation, no blocking.
//   a is a packed A panel (kc, MR): a[p*MR + i] = A(i, p)
//   b is a packed B panel (kc, NR): b[p*NR + j] = B(p, j)
//   c is the (mr, nr) corner of C, row-major with row stride ldc, mr <= MR, nr <= NR
//   c = (accumulate ? c : 0) + a^T b; only the mr x nr elements are touched (edge tiles).
// Packed panels are zero-padded to full MR / NR, so kernels always compute full tiles.
#pragma once
#include <cstdint>

namespace cnnfast {

template <class T>
using GemmUkernel = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t mr,
                             int64_t nr, bool accumulate);

// Packs one B panel from NR source rows read along k (a transposing copy, for B given as Bᵀ):
//   dst[p*NR + j] = rows[j][p*stride]   for p < k, j < NR
template <class T>
using GemmPackRows = void (*)(int64_t k, const T* const* rows, int64_t stride, T* dst);

// The portable loop behind GemmPackRows (each ISA file instantiates it with its own flags).
template <class T, int NR>
void gemm_pack_rows_generic(int64_t k, const T* const* rows, int64_t stride, T* dst) {
  constexpr int64_t kBlock = 64;  // positions per pass: the block of dst (kBlock x NR) in L1
  for (int64_t p0 = 0; p0 < k; p0 += kBlock) {
    const int64_t pn = k - p0 < kBlock ? k - p0 : kBlock;
    for (int j = 0; j < NR; ++j) {
      const T* s = rows[j] + p0 * stride;
      T* d = dst + p0 * NR + j;
      for (int64_t p = 0; p < pn; ++p) d[p * NR] = s[p * stride];
    }
  }
}

// Register tile and cache blocks of one ISA's kernel: configuration as data, not literals.
template <class T>
struct GemmKernel {
  const char* name;
  int mr, nr;      // register tile
  int mc, kc, nc;  // cache blocks: A block mc x kc (L2), B panel kc x nc (L3)
  GemmUkernel<T> ukernel;
  GemmPackRows<T> pack_rows;
};

// Per-ISA kernels (defined in the *__<isa>.cpp files of this folder).
extern const GemmKernel<float> gemm_f32_4x8__scalar;
extern const GemmKernel<double> gemm_f64_4x4__scalar;
extern const GemmKernel<float> gemm_f32_6x16__avx2;
extern const GemmKernel<double> gemm_f64_6x8__avx2;
extern const GemmKernel<float> gemm_f32_12x32__avx512;
extern const GemmKernel<double> gemm_f64_12x16__avx512;

// Writes a full MR x NR tile held in `tile` (row-major, stride NR) to the (mr, nr) corner of c.
template <class T>
inline void store_edge_tile(const T* tile, int nr_full, T* c, int64_t ldc, int64_t mr, int64_t nr,
                            bool accumulate) {
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j)
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i * nr_full + j] : tile[i * nr_full + j];
}

}  // namespace cnnfast
