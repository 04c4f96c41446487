// gemm_6x16__avx2.cpp — AVX2+FMA microkernels: f32 6x16 (12 ymm accumulators) and f64 6x8.
// Compiled with -mavx2 -mfma only; chosen at run time when the CPU supports it. Accumulators are
// named locals (never an array whose address escapes) so they stay in registers across the k loop.
#include <immintrin.h>

#include "cpu/kernels/gemm_ukernel.h"

namespace cnnfast {
namespace {
#include "cpu/kernels/avx2_lanes_impl.h"

// One k step of the f32 tile: two B vectors, six broadcasts of A, twelve FMAs.
#define CNNFAST_F32_STEP(A, B)                                               \
  do {                                                                       \
    const __m256 b0 = _mm256_loadu_ps(B), b1 = _mm256_loadu_ps((B) + 8);    \
    __m256 ai = _mm256_broadcast_ss((A) + 0);                                \
    c00 = _mm256_fmadd_ps(ai, b0, c00); c01 = _mm256_fmadd_ps(ai, b1, c01); \
    ai = _mm256_broadcast_ss((A) + 1);                                       \
    c10 = _mm256_fmadd_ps(ai, b0, c10); c11 = _mm256_fmadd_ps(ai, b1, c11); \
    ai = _mm256_broadcast_ss((A) + 2);                                       \
    c20 = _mm256_fmadd_ps(ai, b0, c20); c21 = _mm256_fmadd_ps(ai, b1, c21); \
    ai = _mm256_broadcast_ss((A) + 3);                                       \
    c30 = _mm256_fmadd_ps(ai, b0, c30); c31 = _mm256_fmadd_ps(ai, b1, c31); \
    ai = _mm256_broadcast_ss((A) + 4);                                       \
    c40 = _mm256_fmadd_ps(ai, b0, c40); c41 = _mm256_fmadd_ps(ai, b1, c41); \
    ai = _mm256_broadcast_ss((A) + 5);                                       \
    c50 = _mm256_fmadd_ps(ai, b0, c50); c51 = _mm256_fmadd_ps(ai, b1, c51); \
  } while (0)

// The k loop, four steps per trip, in inline assembly: GCC's register allocator spills two of the
// twelve accumulators and shuffles the rest when this loop is written with intrinsics (15 of the
// 16 ymm registers are live), costing ~15 % of the kernel's speed. Accumulators stay C variables
// ("+x" operands) so the prologue, the k tail and the stores remain intrinsics.
#define CNNFAST_ASM_STEP(A0, A1, A2, A3, A4, A5, B0, B1)  \
  "vmovups " B0 "(%[b]), %%ymm12\n\t"                    \
  "vmovups " B1 "(%[b]), %%ymm13\n\t"                    \
  "vbroadcastss " A0 "(%[a]), %%ymm14\n\t"               \
  "vfmadd231ps %%ymm12, %%ymm14, %[c00]\n\t"             \
  "vfmadd231ps %%ymm13, %%ymm14, %[c01]\n\t"             \
  "vbroadcastss " A1 "(%[a]), %%ymm15\n\t"               \
  "vfmadd231ps %%ymm12, %%ymm15, %[c10]\n\t"             \
  "vfmadd231ps %%ymm13, %%ymm15, %[c11]\n\t"             \
  "vbroadcastss " A2 "(%[a]), %%ymm14\n\t"               \
  "vfmadd231ps %%ymm12, %%ymm14, %[c20]\n\t"             \
  "vfmadd231ps %%ymm13, %%ymm14, %[c21]\n\t"             \
  "vbroadcastss " A3 "(%[a]), %%ymm15\n\t"               \
  "vfmadd231ps %%ymm12, %%ymm15, %[c30]\n\t"             \
  "vfmadd231ps %%ymm13, %%ymm15, %[c31]\n\t"             \
  "vbroadcastss " A4 "(%[a]), %%ymm14\n\t"               \
  "vfmadd231ps %%ymm12, %%ymm14, %[c40]\n\t"             \
  "vfmadd231ps %%ymm13, %%ymm14, %[c41]\n\t"             \
  "vbroadcastss " A5 "(%[a]), %%ymm15\n\t"               \
  "vfmadd231ps %%ymm12, %%ymm15, %[c50]\n\t"             \
  "vfmadd231ps %%ymm13, %%ymm15, %[c51]\n\t"

void ukernel_f32_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                      int64_t mr, int64_t nr, bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  // C rows are read (accumulate) or written at the end: start fetching them now so the tile's
  // last stores do not wait on memory (C of a big GEMM lives far outside the caches).
  for (int64_t i = 0; i < mr; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + nr - 1), _MM_HINT_T0);
  }
  int64_t trips = kc / 4;
  if (trips > 0) {
    // a advances 4 x 6 floats (96 bytes) and b 4 x 16 floats (256 bytes) per trip.
    asm volatile(
        "1:\n\t"
        "prefetcht0 1024(%[b])\n\t"
        CNNFAST_ASM_STEP("0", "4", "8", "12", "16", "20", "0", "32")
        CNNFAST_ASM_STEP("24", "28", "32", "36", "40", "44", "64", "96")
        CNNFAST_ASM_STEP("48", "52", "56", "60", "64", "68", "128", "160")
        CNNFAST_ASM_STEP("72", "76", "80", "84", "88", "92", "192", "224")
        "add $96, %[a]\n\t"
        "add $256, %[b]\n\t"
        "dec %[trips]\n\t"
        "jnz 1b\n\t"
        : [a] "+r"(a), [b] "+r"(b), [trips] "+r"(trips), [c00] "+x"(c00), [c01] "+x"(c01),
          [c10] "+x"(c10), [c11] "+x"(c11), [c20] "+x"(c20), [c21] "+x"(c21), [c30] "+x"(c30),
          [c31] "+x"(c31), [c40] "+x"(c40), [c41] "+x"(c41), [c50] "+x"(c50), [c51] "+x"(c51)
        :
        : "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
  }
  for (int64_t p = kc & ~int64_t(3); p < kc; ++p) {
    CNNFAST_F32_STEP(a, b);
    a += 6;
    b += 16;
  }
  if (mr == 6 && nr == 16) {
    const __m256 rows[6][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                               {c30, c31}, {c40, c41}, {c50, c51}};
    for (int i = 0; i < 6; ++i) {
      float* ci = c + i * ldc;
      __m256 v0 = rows[i][0], v1 = rows[i][1];
      if (accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(ci));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(ci + 8));
      }
      _mm256_storeu_ps(ci, v0);
      _mm256_storeu_ps(ci + 8, v1);
    }
    return;
  }
  alignas(32) float tile[6 * 16];
  _mm256_store_ps(tile + 0, c00);  _mm256_store_ps(tile + 8, c01);
  _mm256_store_ps(tile + 16, c10); _mm256_store_ps(tile + 24, c11);
  _mm256_store_ps(tile + 32, c20); _mm256_store_ps(tile + 40, c21);
  _mm256_store_ps(tile + 48, c30); _mm256_store_ps(tile + 56, c31);
  _mm256_store_ps(tile + 64, c40); _mm256_store_ps(tile + 72, c41);
  _mm256_store_ps(tile + 80, c50); _mm256_store_ps(tile + 88, c51);
  store_edge_tile(tile, 16, c, ldc, mr, nr, accumulate);
}
#undef CNNFAST_F32_STEP
#undef CNNFAST_ASM_STEP

#define CNNFAST_F64_STEP(A, B)                                               \
  do {                                                                       \
    const __m256d b0 = _mm256_loadu_pd(B), b1 = _mm256_loadu_pd((B) + 4);   \
    __m256d ai = _mm256_broadcast_sd((A) + 0);                               \
    c00 = _mm256_fmadd_pd(ai, b0, c00); c01 = _mm256_fmadd_pd(ai, b1, c01); \
    ai = _mm256_broadcast_sd((A) + 1);                                       \
    c10 = _mm256_fmadd_pd(ai, b0, c10); c11 = _mm256_fmadd_pd(ai, b1, c11); \
    ai = _mm256_broadcast_sd((A) + 2);                                       \
    c20 = _mm256_fmadd_pd(ai, b0, c20); c21 = _mm256_fmadd_pd(ai, b1, c21); \
    ai = _mm256_broadcast_sd((A) + 3);                                       \
    c30 = _mm256_fmadd_pd(ai, b0, c30); c31 = _mm256_fmadd_pd(ai, b1, c31); \
    ai = _mm256_broadcast_sd((A) + 4);                                       \
    c40 = _mm256_fmadd_pd(ai, b0, c40); c41 = _mm256_fmadd_pd(ai, b1, c41); \
    ai = _mm256_broadcast_sd((A) + 5);                                       \
    c50 = _mm256_fmadd_pd(ai, b0, c50); c51 = _mm256_fmadd_pd(ai, b1, c51); \
  } while (0)

void ukernel_f64_6x8(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                     int64_t mr, int64_t nr, bool accumulate) {
  __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
          c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t p = 0; p < kc; ++p) {
    CNNFAST_F64_STEP(a, b);
    a += 6;
    b += 8;
  }
  alignas(32) double tile[6 * 8];
  _mm256_store_pd(tile + 0, c00);  _mm256_store_pd(tile + 4, c01);
  _mm256_store_pd(tile + 8, c10);  _mm256_store_pd(tile + 12, c11);
  _mm256_store_pd(tile + 16, c20); _mm256_store_pd(tile + 20, c21);
  _mm256_store_pd(tile + 24, c30); _mm256_store_pd(tile + 28, c31);
  _mm256_store_pd(tile + 32, c40); _mm256_store_pd(tile + 36, c41);
  _mm256_store_pd(tile + 40, c50); _mm256_store_pd(tile + 44, c51);
  store_edge_tile(tile, 8, c, ldc, mr, nr, accumulate);
}
#undef CNNFAST_F64_STEP

// B panel (k, 16) from 16 rows: 8x8 blocks transposed in registers; a tail of k % 8 positions
// and strided rows take the portable loop. Column q of the block goes to dst[q*16].
inline void transpose8x8_store(const float* const* rows, int64_t p, float* dst) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(rows[i] + p);
  transpose8x8(r);
  for (int q = 0; q < 8; ++q) _mm256_storeu_ps(dst + q * 16, r[q]);
}

void pack_rows_f32_16(int64_t k, const float* const* rows, int64_t stride, float* dst) {
  if (stride != 1) return gemm_pack_rows_generic<float, 16>(k, rows, stride, dst);
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    transpose8x8_store(rows, p, dst + p * 16);
    transpose8x8_store(rows + 8, p, dst + p * 16 + 8);
  }
  if (p < k) {
    const float* tail[16];
    for (int j = 0; j < 16; ++j) tail[j] = rows[j] + p;
    gemm_pack_rows_generic<float, 16>(k - p, tail, 1, dst + p * 16);
  }
}

}  // namespace

const GemmKernel<float> gemm_f32_6x16__avx2 = {"gemm_f32_6x16__avx2", 6, 16, 144, 256, 3072,
                                               ukernel_f32_6x16, pack_rows_f32_16};
const GemmKernel<double> gemm_f64_6x8__avx2 = {"gemm_f64_6x8__avx2", 6, 8, 96, 256, 2048,
                                               ukernel_f64_6x8,
                                               gemm_pack_rows_generic<double, 8>};

}  // namespace cnnfast
