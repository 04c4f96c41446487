// conv2d_implicit_tile__avx512.cpp — AVX-512F implicit-GEMM conv tiles, f32: 12 positions x 16
// channels (12 zmm accumulators; per reduction step one weight vector, 12 broadcasts straight
// from the padded image, 12 FMAs) and 8 positions x 32 channels (16 accumulators; two weight
// vectors, 8 broadcasts, 16 FMAs: each broadcast feeds two FMAs, so the loads no longer bound
// it) for channel counts that are multiples of 32, and 6 x 64 (24 accumulators, four weight
// vectors, 6 broadcasts, 24 FMAs) for multiples of 64. Two FMA pipes of latency 4 need at least 8
// chains in flight; the plain loops' 6x16 had 6 and ran at half the AVX2 tile's speed. The row
// stores are the AVX2 file's (conv2d_implicit_rows_avx_impl.h); f64 uses the shared plain loops,
// all built with this file's flags.
#include <immintrin.h>

#include <algorithm>

#include "cpu/kernels/conv2d_implicit_tile.h"

namespace cnnfast {
namespace {
#include "cpu/kernels/avx2_lanes_impl.h"
#include "cpu/kernels/conv2d_implicit_tile_impl.h"
#include "cpu/kernels/conv2d_implicit_rows_avx_impl.h"

// out (MR, 16*NV) (=|+=) Σ_t xs[i][off[t]] · b[t*ldb + 0..16*NV)
template <int MR, int NV>
void tile_f32(int64_t n, const float* const* xs, const int64_t* off, const float* b, int64_t ldb,
              float* out, bool accumulate) {
  __m512 c[MR][NV];
  const float* x[MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    x[i] = xs[i];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) c[i][v] = _mm512_setzero_ps();
  }
  for (int64_t t = 0; t < n; ++t) {
    const int64_t o = off[t];
    __m512 bt[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bt[v] = _mm512_loadu_ps(b + 16 * v);
    b += ldb;
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(x[i][o]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[i][v] = _mm512_fmadd_ps(a, bt[v], c[i][v]);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* o = out + (i * NV + v) * 16;
      if (accumulate) c[i][v] = _mm512_add_ps(c[i][v], _mm512_loadu_ps(o));
      _mm512_storeu_ps(o, c[i][v]);
    }
}

}  // namespace

const ImplicitTileKernel<float> conv2d_implicit_f32_12x16__avx512 = {
    "conv2d_implicit_f32_12x16__avx512", 12, 16, tile_f32<12, 1>, store_channels_f32<12, 16>,
    transpose_f32, interleave2_f32, deinterleave2_f32};
const ImplicitTileKernel<float> conv2d_implicit_f32_8x32__avx512 = {
    "conv2d_implicit_f32_8x32__avx512", 8, 32, tile_f32<8, 2>, store_channels_f32<8, 32>,
    transpose_f32, interleave2_f32, deinterleave2_f32};
const ImplicitTileKernel<float> conv2d_implicit_f32_6x64__avx512 = {
    "conv2d_implicit_f32_6x64__avx512", 6, 64, tile_f32<6, 4>, store_channels_f32<6, 64>,
    transpose_f32, interleave2_f32, deinterleave2_f32};
const ImplicitTileKernel<double> conv2d_implicit_f64_6x16__avx512 = {
    "conv2d_implicit_f64_6x16__avx512", 6, 16, implicit_tile_6x16<double>,
    store_channels_rows<double, 16>, transpose_rows<double>,
    interleave2_rows<double>, deinterleave2_rows<double>};

}  // namespace cnnfast
