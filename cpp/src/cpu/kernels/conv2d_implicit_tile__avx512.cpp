// conv2d_implicit_tile__avx512.cpp — AVX-512F implicit-GEMM conv tile: f32 MR positions x 16
// channels in MR zmm accumulators; per reduction step one weight vector, MR broadcasts straight
// from the padded image, MR FMAs (two FMA pipes of latency 4 need at least 8 chains in flight;
// the plain loops' 6x16 had 6 and ran at half the AVX2 tile's speed). f64 and the tiled
// convolution's (de)interleaves use the shared plain loops with this file's flags.
#include <immintrin.h>

#include "cpu/kernels/conv2d_implicit_tile.h"

namespace cnnfast {
namespace {
#include "cpu/kernels/conv2d_implicit_tile_impl.h"

constexpr int kRows = 12;  // MR: 12 accumulators, 12 row pointers

// out (kRows, 16) (=|+=) Σ_t xs[i][off[t]] · b[t*ldb + 0..15]
void tile_f32_12x16(int64_t n, const float* const* xs, const int64_t* off, const float* b,
                    int64_t ldb, float* out, bool accumulate) {
  __m512 c[kRows];
  const float* x[kRows];
#pragma GCC unroll 12
  for (int i = 0; i < kRows; ++i) c[i] = _mm512_setzero_ps(), x[i] = xs[i];
  for (int64_t t = 0; t < n; ++t) {
    const int64_t o = off[t];
    const __m512 bt = _mm512_loadu_ps(b);
    b += ldb;
#pragma GCC unroll 12
    for (int i = 0; i < kRows; ++i) c[i] = _mm512_fmadd_ps(_mm512_set1_ps(x[i][o]), bt, c[i]);
  }
#pragma GCC unroll 12
  for (int i = 0; i < kRows; ++i) {
    if (accumulate) c[i] = _mm512_add_ps(c[i], _mm512_loadu_ps(out + 16 * i));
    _mm512_storeu_ps(out + 16 * i, c[i]);
  }
}

}  // namespace

const ImplicitTileKernel<float> conv2d_implicit_f32_12x16__avx512 = {
    "conv2d_implicit_f32_12x16__avx512", kRows, 16, tile_f32_12x16, interleave2_rows<float>,
    deinterleave2_rows<float>};
const ImplicitTileKernel<double> conv2d_implicit_f64_6x16__avx512 = {
    "conv2d_implicit_f64_6x16__avx512", 6, 16, implicit_tile_6x16<double>,
    interleave2_rows<double>, deinterleave2_rows<double>};

}  // namespace cnnfast
