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
#include "cpu/kernels/conv2d_implicit_rows_avx_impl.h"

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

}  // namespace

const ImplicitTileKernel<float> conv2d_implicit_f32_6x16__avx2 = {
    "conv2d_implicit_f32_6x16__avx2", 6, 16, tile_f32_6x16, store_channels_f32<6, 16>,
    transpose_f32, interleave2_f32, deinterleave2_f32};
const ImplicitTileKernel<double> conv2d_implicit_f64_6x16__avx2 = {
    "conv2d_implicit_f64_6x16__avx2", 6, 16, implicit_tile_6x16<double>,
    store_channels_rows<double, 16>, transpose_rows<double>,
    interleave2_rows<double>, deinterleave2_rows<double>};

}  // namespace cnnfast
