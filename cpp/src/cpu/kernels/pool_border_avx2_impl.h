// pool_border_avx2_impl.h — max_2cols (contract in pool_ukernel.h) in 256-bit AVX2: the 2 columns
// of up to 4 rows in one vector, lanes in raster order (row r at lanes 2r, 2r + 1; -inf after the
// last row), reduced without a branch per tap (the scalar loop's branches mispredict on real
// data; A/B, 3x3 stride-2 padding-1 max pooling: 0.935 at 1 thread). pool__avx2.cpp and
// pool__avx512.cpp include it inside their anonymous namespace (each copy built with its own
// file's flags).
#pragma once
// (included after <immintrin.h> and pool_ukernel.h; no includes here)

void max_2cols(int64_t nrows, const float* const* rows, const int64_t* row_index, int64_t off,
               float* y, int64_t* idx) {
  const __m128 ninf = _mm_set1_ps(-__builtin_inff());
  auto pair = [&](__m128 v, int64_t r, bool high) {  // rows[r][off], rows[r][off + 1]: 8 bytes
    const __m64* src = reinterpret_cast<const __m64*>(rows[r] + off);
    return high ? _mm_loadh_pi(v, src) : _mm_loadl_pi(v, src);
  };
  __m128 lo = pair(ninf, 0, false), hi = ninf;
  if (nrows > 1) lo = pair(lo, 1, true);
  if (nrows > 2) hi = pair(hi, 2, false);
  if (nrows > 3) hi = pair(hi, 3, true);
  const __m256 x = _mm256_set_m128(hi, lo);
  const int nan = _mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  int lane;
  if (nan) {  // the first NaN in raster order wins
    lane = __builtin_ctz(static_cast<unsigned>(nan));
  } else {  // the first lane equal to the max (the -inf fill sits after every real lane)
    __m256 m = _mm256_max_ps(x, _mm256_permute2f128_ps(x, x, 1));
    m = _mm256_max_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm256_max_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
    lane = __builtin_ctz(static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(x, m, _CMP_EQ_OQ))));
  }
  const int64_t r = lane >> 1, t = lane & 1;
  *y = rows[r][off + t];
  if (idx) *idx = row_index[r] + off + t;
}
