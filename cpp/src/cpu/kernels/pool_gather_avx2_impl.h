// pool_gather_avx2_impl.h — avg pooling's backward microkernels (contract in pool_ukernel.h) in
// 256-bit AVX2. combine_rows: 8 outputs a block, the scaled grad rows summed in row order.
// gather_phases (along W): stride 1 sums ntaps[0] shifted loads per 8 outputs; stride 2 sums the
// even and the odd phase's loads for 8 j's and interleaves them into 16 dx; other strides and
// rows shorter than a block run the scalar loop (same order: every ISA gives the same bits).
// Row tails are one overlapping block (outputs are written, never read, so again the same
// values). pool__avx2.cpp and pool__avx512.cpp include this inside their anonymous namespace,
// after pool_2x2_avx2_impl.h (interleave16).
#pragma once
// (included after <immintrin.h>, <algorithm>, pool_ukernel.h and pool_2x2_avx2_impl.h)

// 8 outputs a block, the row tail as one overlapping block (y is written, never read).
void combine_rows(int64_t n, int64_t nrows, const float* const* rows, const float* f,
                  const float* colscale, float* y) {
  if (n < 8) return combine_rows_from(int64_t(0), n, nrows, rows, f, colscale, y);
  for (int64_t j = 0; j < n; j = std::min(j + 8, n)) {
    const int64_t at = std::min(j, n - 8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t r = 0; r < nrows; ++r)
      acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(f[r]), _mm256_loadu_ps(rows[r] + at)));
    _mm256_storeu_ps(y + at, _mm256_mul_ps(acc, _mm256_loadu_ps(colscale + at)));
  }
}

// Σ_i src[offs[i] + 0..7], in i order.
inline __m256 sum_taps8(const float* src, int64_t ntaps, const int64_t* offs) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < ntaps; ++i) acc = _mm256_add_ps(acc, _mm256_loadu_ps(src + offs[i]));
  return acc;
}

void gather_phases(int64_t n, int64_t s, int64_t kt, const int64_t* ntaps, const int64_t* offs,
                   const float* src, float* dx) {
  if (s == 1 && n >= 8) {
    for (int64_t w = 0; w < n; w = std::min(w + 8, n)) {
      const int64_t at = std::min(w, n - 8);
      _mm256_storeu_ps(dx + at, sum_taps8(src + at, ntaps[0], offs));
    }
    return;
  }
  if (s == 2 && n >= 16) {
    const int64_t last = (n - 16) & ~int64_t(1);  // blocks start at even w (phase 0 first)
    for (int64_t w = 0;; w += 16) {
      const int64_t at = std::min(w, last), j = at / 2;
      interleave16(dx + at, sum_taps8(src + j, ntaps[0], offs),
                   sum_taps8(src + j, ntaps[1], offs + kt));
      if (at == last) break;
    }
    gather_phases_from(last + 16, n, s, kt, ntaps, offs, src, dx);  // odd n: the last element
    return;
  }
  gather_phases_from(int64_t(0), n, s, kt, ntaps, offs, src, dx);
}
