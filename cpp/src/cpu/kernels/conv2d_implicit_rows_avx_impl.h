// conv2d_implicit_rows_avx_impl.h — the implicit-GEMM tiles' row moves in AVX registers, shared
// by the AVX2 and AVX-512 tile files (each builds them with its own flags): a tile (positions x
// channels) written as channel rows with bias and ReLU (store_channels_f32), the weight
// gradient's dY transpose (transpose_f32), and the tiled convolution's two-bank interleave and
// its inverse (see conv2d_implicit_tile.h). Each moves 8x8 blocks through transpose8x8.
// Included inside the file's anonymous namespace, after <immintrin.h>, <algorithm>,
// avx2_lanes_impl.h and conv2d_implicit_tile_impl.h.
#pragma once

// y[j*ldy + i] = act(tile[i*NR + j] + bias[j])  (i < mr <= MR, j < nk <= NR; bias may be null;
// act: ReLU as max(0, v), NaN kept, or none). tile is (MR, NR), NR a multiple of 8. Each 8x8
// block (8 positions x 8 channels) is transposed in registers; rows past MR repeat row MR - 1
// and positions past mr are masked off the stores.
template <int MR, int NR>
void store_channels_f32(int64_t mr, int64_t nk, const float* tile, const float* bias, bool relu,
                        float* y, int64_t ldy) {
  static_assert(NR % 8 == 0, "channel side in whole 8-float blocks");
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t i0 = 0; i0 < mr; i0 += 8) {
    const int m = static_cast<int>(std::min<int64_t>(8, mr - i0));
    const __m256i mask =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int64_t j0 = 0; j0 < nk; j0 += 8) {
      __m256 r[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i)
        r[i] = _mm256_loadu_ps(tile + std::min<int64_t>(i0 + i, MR - 1) * NR + j0);
      transpose8x8(r);  // r[j]: channel j0 + j at positions i0 .. i0 + 7
      const int64_t nj = std::min<int64_t>(8, nk - j0);
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {  // constant indices into r: it stays in registers
        if (j >= nj) break;
        __m256 v = r[j];
        if (bias) v = _mm256_add_ps(v, _mm256_set1_ps(bias[j0 + j]));
        if (relu) v = _mm256_max_ps(zero, v);  // max(0, NaN) = NaN: the second operand
        float* dst = y + (j0 + j) * ldy + i0;
        if (m == 8)
          _mm256_storeu_ps(dst, v);
        else
          _mm256_maskstore_ps(dst, mask, v);
      }
    }
  }
}

// dst[c*ldd + r] = src[r*lds + c]: 8x8 blocks through registers, column block by column block
// (dst's rows are written in order, src's 8 rows stream), the row and column tails plainly.
void transpose_f32(int64_t rows, int64_t cols, const float* src, int64_t lds, float* dst,
                   int64_t ldd) {
  const int64_t rows8 = rows / 8 * 8, cols8 = cols / 8 * 8;
  for (int64_t c0 = 0; c0 < cols8; c0 += 8) {
    for (int64_t r0 = 0; r0 < rows8; r0 += 8) {
      __m256 r[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (r0 + i) * lds + c0);
      transpose8x8(r);  // r[j]: column c0 + j of rows r0 .. r0 + 7
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + (c0 + j) * ldd + r0, r[j]);
    }
    if (rows8 < rows)
      transpose_rows<float>(rows - rows8, 8, src + rows8 * lds + c0, lds, dst + c0 * ldd + rows8,
                            ldd);
  }
  if (cols8 < cols)
    transpose_rows<float>(rows, cols - cols8, src + cols8, lds, dst + cols8 * ldd, ldd);
}

// 8 channels x 8 positions of each block: rows loaded with their biases, transposed in
// registers, the two blocks' channel vectors interleaved into 16 consecutive outputs. Position
// tails run as one overlapping block (the same values stored again); channel tails and blocks of
// under 8 positions take the plain loop.
void interleave2_f32(int64_t nk, int64_t nq, const float* a, const float* b, int64_t lds,
                     const float* ba, const float* bb, float* y, int64_t ldy) {
  int64_t k0 = 0;
  if (nq >= 8)
    for (; k0 + 8 <= nk; k0 += 8) {
      const __m256 bias_a = _mm256_loadu_ps(ba + k0), bias_b = _mm256_loadu_ps(bb + k0);
      for (int64_t q0 = 0;; q0 += 8) {
        const int64_t at = std::min(q0, nq - 8);
        __m256 ra[8], rb[8];
        for (int i = 0; i < 8; ++i) {
          ra[i] = _mm256_add_ps(_mm256_loadu_ps(a + (at + i) * lds + k0), bias_a);
          rb[i] = _mm256_add_ps(_mm256_loadu_ps(b + (at + i) * lds + k0), bias_b);
        }
        transpose8x8(ra);  // ra[c]: channel k0 + c at positions at .. at + 7
        transpose8x8(rb);
        for (int c = 0; c < 8; ++c) interleave16(y + (k0 + c) * ldy + 2 * at, ra[c], rb[c]);
        if (at == nq - 8) break;
      }
    }
  if (k0 < nk)
    interleave2_rows<float>(nk - k0, nq, a + k0, b + k0, lds, ba + k0, bb + k0, y + k0 * ldy, ldy);
}

// interleave2_f32's inverse: 8 channel rows x 16 values deinterleaved into the two blocks'
// 8 positions, each 8x8 block transposed in registers and stored as 8 position rows of 8
// channels. Tails as in interleave2_f32.
void deinterleave2_f32(int64_t nk, int64_t nq, const float* y, int64_t ldy, float* a, float* b,
                       int64_t lds) {
  int64_t k0 = 0;
  if (nq >= 8)
    for (; k0 + 8 <= nk; k0 += 8)
      for (int64_t q0 = 0;; q0 += 8) {
        const int64_t at = std::min(q0, nq - 8);
        __m256 ra[8], rb[8];
        for (int c = 0; c < 8; ++c) {
          const float* row = y + (k0 + c) * ldy + 2 * at;
          deinterleave16(_mm256_loadu_ps(row), _mm256_loadu_ps(row + 8), ra[c], rb[c]);
        }
        transpose8x8(ra);  // ra[i]: position at + i, channels k0 .. k0 + 7
        transpose8x8(rb);
        for (int i = 0; i < 8; ++i) {
          _mm256_storeu_ps(a + (at + i) * lds + k0, ra[i]);
          _mm256_storeu_ps(b + (at + i) * lds + k0, rb[i]);
        }
        if (at == nq - 8) break;
      }
  if (k0 < nk) deinterleave2_rows<float>(nk - k0, nq, y + k0 * ldy, ldy, a + k0, b + k0, lds);
}
