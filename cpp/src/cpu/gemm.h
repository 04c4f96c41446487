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

// A packed once for several GEMMs that share it (a convolution's weights across image blocks):
// for each KC block of k, ceil(m/MR) panels of (kc, MR), in the order gemm's loops read them.
template <class T>
int64_t gemm_packed_a_size(int64_t m, int64_t k);  // elements
template <class T>
void gemm_pack_a(int64_t m, int64_t k, const T* a, int64_t rsa, int64_t csa, T* ap, int nthreads);
// Where gemm_pack_a puts A(i, p), for callers that write a packed A directly: in the KC block
// starting at pc = p - p mod kc (kb = min(kc, k - pc) wide), panel i / mr, row i mod mr. Rows
// i in [m, mp) of the last panel must hold zeros.
struct PackedALayout {
  int64_t mr, kc, mp, k;
  int64_t block_width(int64_t pc) const { return k - pc < kc ? k - pc : kc; }
  // Offset of A(i, pc) for a block start pc; A(i, p) for p in the block is at + (p - pc)·mr.
  int64_t offset(int64_t i, int64_t pc) const {
    return pc * mp + (i / mr) * mr * block_width(pc) + i % mr;
  }
};
template <class T>
PackedALayout gemm_packed_a_layout(int64_t m, int64_t k);
// gemm() with A from gemm_pack_a (same m and k).
template <class T>
void gemm_prepacked(int64_t m, int64_t n, int64_t k, const T* ap, const T* b, int64_t rsb,
                    int64_t csb, T* c, int64_t ldc, bool accumulate, int nthreads);

// B packed by the caller as well (im2col writing its columns straight into panels): ceil(n/NR)
// panels of the whole k, B(p, j) at bp[(j / NR)*k*NR + p*NR + j % NR] (NR = gemm_panel_width),
// columns past n finite (zeros). Saves the copy gemm's own B packing would make per KC block.
template <class T>
int gemm_panel_width();
template <class T>
void gemm_prepacked_ab(int64_t m, int64_t n, int64_t k, const T* ap, const T* bp, T* c,
                       int64_t ldc, bool accumulate, int nthreads);
// A given by strides (packed as gemm packs it), B packed by the caller as for gemm_prepacked_ab.
template <class T>
void gemm_packed_b(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, int64_t csa,
                   const T* bp, T* c, int64_t ldc, bool accumulate, int nthreads);

}  // namespace cnnfast
