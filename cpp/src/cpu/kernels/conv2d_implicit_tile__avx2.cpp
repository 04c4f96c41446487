// conv2d_implicit_tile__avx2.cpp — AVX2+FMA implicit-GEMM conv tile: f32 6 positions x 16
// channels in 12 ymm accumulators; per reduction step two weight vectors, six broadcasts straight
// from the padded image, twelve FMAs. f64 uses the shared plain loops with this file's flags.
#include <immintrin.h>

#include <algorithm>

#include "cpu/kernels/conv2d_implicit_tile.h"

namespace cnnfast {
namespace {
#include "cpu/kernels/avx2_lanes_impl.h"
#include "cpu/kernels/conv2d_implicit_tile_impl.h"

void tile_f32_6x16(int64_t n, const float* const* xs, const int64_t* off, const float* b,
                   int64_t ldb, float* out, bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  const float *x0 = xs[0], *x1 = xs[1], *x2 = xs[2], *x3 = xs[3], *x4 = xs[4], *x5 = xs[5];
  for (int64_t t = 0; t < n; ++t) {
    const int64_t o = off[t];
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    b += ldb;
    __m256 a = _mm256_broadcast_ss(x0 + o);
    c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
    a = _mm256_broadcast_ss(x1 + o);
    c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
    a = _mm256_broadcast_ss(x2 + o);
    c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
    a = _mm256_broadcast_ss(x3 + o);
    c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
    a = _mm256_broadcast_ss(x4 + o);
    c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
    a = _mm256_broadcast_ss(x5 + o);
    c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
  }
  if (accumulate) {
    c00 = _mm256_add_ps(c00, _mm256_loadu_ps(out + 0));  c01 = _mm256_add_ps(c01, _mm256_loadu_ps(out + 8));
    c10 = _mm256_add_ps(c10, _mm256_loadu_ps(out + 16)); c11 = _mm256_add_ps(c11, _mm256_loadu_ps(out + 24));
    c20 = _mm256_add_ps(c20, _mm256_loadu_ps(out + 32)); c21 = _mm256_add_ps(c21, _mm256_loadu_ps(out + 40));
    c30 = _mm256_add_ps(c30, _mm256_loadu_ps(out + 48)); c31 = _mm256_add_ps(c31, _mm256_loadu_ps(out + 56));
    c40 = _mm256_add_ps(c40, _mm256_loadu_ps(out + 64)); c41 = _mm256_add_ps(c41, _mm256_loadu_ps(out + 72));
    c50 = _mm256_add_ps(c50, _mm256_loadu_ps(out + 80)); c51 = _mm256_add_ps(c51, _mm256_loadu_ps(out + 88));
  }
  _mm256_storeu_ps(out + 0, c00);  _mm256_storeu_ps(out + 8, c01);
  _mm256_storeu_ps(out + 16, c10); _mm256_storeu_ps(out + 24, c11);
  _mm256_storeu_ps(out + 32, c20); _mm256_storeu_ps(out + 40, c21);
  _mm256_storeu_ps(out + 48, c30); _mm256_storeu_ps(out + 56, c31);
  _mm256_storeu_ps(out + 64, c40); _mm256_storeu_ps(out + 72, c41);
  _mm256_storeu_ps(out + 80, c50); _mm256_storeu_ps(out + 88, c51);
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

}  // namespace

const ImplicitTileKernel<float> conv2d_implicit_f32_6x16__avx2 = {
    "conv2d_implicit_f32_6x16__avx2", 6, 16, tile_f32_6x16, interleave2_f32,
    deinterleave2_f32};
const ImplicitTileKernel<double> conv2d_implicit_f64_6x16__avx2 = {
    "conv2d_implicit_f64_6x16__avx2", 6, 16, implicit_tile_6x16<double>, interleave2_rows<double>,
    deinterleave2_rows<double>};

}  // namespace cnnfast
