// pool_2x2_avx2_impl.h — the 2x2 stride-2 pooling microkernels (contract in pool_ukernel.h) in
// 256-bit AVX2: 8 outputs per block from two 16-float loads per row, de-interleaved into the
// even and odd columns; row tails as an overlapping block or, under 8 outputs, a masked one.
// The backward kernels interleave 8 values into 16 dx columns per row, with streaming stores
// when asked and the rows are whole aligned blocks. pool__avx2.cpp and pool__avx512.cpp include
// it inside their anonymous namespace (internal linkage: each copy is built with its own file's
// flags, no ODR sharing).
#pragma once
// (included after <immintrin.h>, <algorithm>, pool_ukernel.h and avx2_lanes_impl.h
// (interleave16); no includes here)

// Lanes l < count set (count may be <= 0 or >= 8).
inline __m256i lanes_below(int64_t count) {
  const int32_t c = static_cast<int32_t>(count < 0 ? 0 : count > 8 ? 8 : count);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The even and odd columns of src[0..15]: 0 2 4 .. 14 and 1 3 5 .. 15. Masked: only the first
// `count` floats are read (the rest are 0), for rows with fewer than 8 outputs.
template <bool kMasked>
inline void deinterleave16(const float* src, int64_t count, __m256& even, __m256& odd) {
  const __m256 lo = kMasked ? _mm256_maskload_ps(src, lanes_below(count)) : _mm256_loadu_ps(src);
  const __m256 hi =
      kMasked ? _mm256_maskload_ps(src + 8, lanes_below(count - 8)) : _mm256_loadu_ps(src + 8);
  deinterleave16(lo, hi, even, odd);
}

// Candidates in raster order: a lane moves to v (and its index) on a strictly greater value
// before any NaN, or on the first NaN; the result is NaN where a NaN was met (as max_rows_one).
// Masked (kMasked): outputs j < m only, for rows with m < 8 outputs.
template <bool kIdx, bool kMasked>
inline void max2x2_block(const float* a, const float* b, int32_t ia, int32_t ib, float* y,
                         int64_t* idx, int64_t m = 8) {
  __m256 v[4];
  deinterleave16<kMasked>(a, 2 * m, v[0], v[1]);
  deinterleave16<kMasked>(b, 2 * m, v[2], v[3]);
  const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  __m256i at[4];
  at[0] = _mm256_add_epi32(_mm256_set1_epi32(ia), even);
  at[1] = _mm256_add_epi32(at[0], _mm256_set1_epi32(1));
  at[2] = _mm256_add_epi32(_mm256_set1_epi32(ib), even);
  at[3] = _mm256_add_epi32(at[2], _mm256_set1_epi32(1));
  __m256 best = v[0], nan = _mm256_cmp_ps(v[0], v[0], _CMP_UNORD_Q);
  __m256i arg = at[0];
  for (int t = 1; t < 4; ++t) {
    const __m256 is_nan = _mm256_cmp_ps(v[t], v[t], _CMP_UNORD_Q);
    const __m256 take =
        _mm256_andnot_ps(nan, _mm256_or_ps(_mm256_cmp_ps(v[t], best, _CMP_GT_OQ), is_nan));
    best = _mm256_blendv_ps(best, v[t], take);
    nan = _mm256_or_ps(nan, is_nan);
    if (kIdx)
      arg = _mm256_castps_si256(
          _mm256_blendv_ps(_mm256_castsi256_ps(arg), _mm256_castsi256_ps(at[t]), take));
  }
  const __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(arg));
  const __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(arg, 1));
  if (kMasked) {
    _mm256_maskstore_ps(y, lanes_below(m), best);
    if (kIdx) {
      const __m256i q = _mm256_setr_epi64x(0, 1, 2, 3);
      _mm256_maskstore_epi64(reinterpret_cast<long long*>(idx),
                             _mm256_cmpgt_epi64(_mm256_set1_epi64x(m), q), lo);
      _mm256_maskstore_epi64(reinterpret_cast<long long*>(idx + 4),
                             _mm256_cmpgt_epi64(_mm256_set1_epi64x(m - 4), q), hi);
    }
    return;
  }
  _mm256_storeu_ps(y, best);
  if (kIdx) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + 4), hi);
  }
}

// Indices fit in int32 (pool_kernels hands planes of 2^31 elements or more to the scalar table).
// Rows of 8+ outputs end with one block overlapping the previous one (same values rewritten);
// shorter rows (LeNet's 5-wide S4) run one masked block.
void max2x2(int64_t n, const float* a, const float* b, int64_t ia, int64_t ib, float* y,
            int64_t* idx) {
  auto block = [&](int64_t j) {
    const int32_t ja = static_cast<int32_t>(ia + 2 * j), jb = static_cast<int32_t>(ib + 2 * j);
    idx ? max2x2_block<true, false>(a + 2 * j, b + 2 * j, ja, jb, y + j, idx + j)
        : max2x2_block<false, false>(a + 2 * j, b + 2 * j, ja, jb, y + j, nullptr);
  };
  if (n < 8) {
    if (n > 0)
      idx ? max2x2_block<true, true>(a, b, static_cast<int32_t>(ia), static_cast<int32_t>(ib), y,
                                     idx, n)
          : max2x2_block<false, true>(a, b, static_cast<int32_t>(ia), static_cast<int32_t>(ib),
                                      y, nullptr, n);
    return;
  }
  for (int64_t j = 0; j + 8 <= n; j += 8) block(j);
  if (n % 8) block(n - 8);
}

// The sum in max2x2's raster order (0 + a0 + a1 + b0 + b1, as sum2x2_one), times scale.
template <bool kMasked>
inline void sum2x2_block(const float* a, const float* b, __m256 scale, float* y, int64_t m = 8) {
  __m256 a0, a1, b0, b1;
  deinterleave16<kMasked>(a, 2 * m, a0, a1);
  deinterleave16<kMasked>(b, 2 * m, b0, b1);
  const __m256 sum = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), b0), b1);
  const __m256 v = _mm256_mul_ps(_mm256_add_ps(_mm256_setzero_ps(), sum), scale);
  kMasked ? _mm256_maskstore_ps(y, lanes_below(m), v) : _mm256_storeu_ps(y, v);
}

void sum2x2(int64_t n, const float* a, const float* b, float scale, float* y) {
  const __m256 s = _mm256_set1_ps(scale);
  if (n < 8) {
    if (n > 0) sum2x2_block<true>(a, b, s, y, n);
    return;
  }
  for (int64_t j = 0; j + 8 <= n; j += 8) sum2x2_block<false>(a + 2 * j, b + 2 * j, s, y + j);
  if (n % 8) sum2x2_block<false>(a + 2 * (n - 8), b + 2 * (n - 8), s, y + n - 8);
}

// The low dwords of two 4 x int64 masks (outputs 0-3, 4-7) as one 8 x 32-bit mask.
inline __m256 pack_mask64(__m256i m0, __m256i m1) {
  const __m256 e = _mm256_shuffle_ps(_mm256_castsi256_ps(m0), _mm256_castsi256_ps(m1),
                                     _MM_SHUFFLE(2, 0, 2, 0));  // 0 1 4 5 | 2 3 6 7
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
}

// m[c] for 8 consecutive windows (first one at flat index `base`, the next ones 2 apart): the
// lanes whose idx names cell c of their window, c = 0, 1 (row a), 2, 3 (row b = a + W); compared
// in 64 bits, packed to 32-bit lanes.
inline void window_cells(const int64_t* idx, int64_t base, int64_t W, __m256 m[4]) {
  const __m256i b = _mm256_set1_epi64x(base);
  const __m256i r0 = _mm256_sub_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx)),
                                      _mm256_add_epi64(b, _mm256_setr_epi64x(0, 2, 4, 6)));
  const __m256i r1 =
      _mm256_sub_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + 4)),
                       _mm256_add_epi64(b, _mm256_setr_epi64x(8, 10, 12, 14)));
  const int64_t cells[4] = {0, 1, W, W + 1};
  for (int c = 0; c < 4; ++c) {
    const __m256i cell = _mm256_set1_epi64x(cells[c]);
    m[c] = pack_mask64(_mm256_cmpeq_epi64(r0, cell), _mm256_cmpeq_epi64(r1, cell));
  }
}

// 8 outputs a block: the four cells' columns de-interleaved from both rows, the one each index
// names kept.
bool unpool2x2_bwd(int64_t n, const float* a, const int64_t* idx, int64_t ia, int64_t W,
                   float* dx) {
  __m256 all = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 m[4], v[4];  // v: the four cells of the 8 windows: a even, a odd, b even, b odd
    window_cells(idx + j, ia + 2 * j, W, m);
    deinterleave16<false>(a + 2 * j, 16, v[0], v[1]);
    deinterleave16<false>(a + W + 2 * j, 16, v[2], v[3]);
    __m256 got = _mm256_setzero_ps(), any = _mm256_setzero_ps();
    for (int c = 0; c < 4; ++c) {
      got = _mm256_or_ps(got, _mm256_and_ps(m[c], v[c]));
      any = _mm256_or_ps(any, m[c]);
    }
    all = _mm256_and_ps(all, any);
    _mm256_storeu_ps(dx + j, got);
  }
  bool ok = _mm256_movemask_ps(all) == 0xff;
  for (; j < n; ++j) ok &= unpool2x2_bwd_one(a + 2 * j, idx[j], ia + 2 * j, W, dx + j);
  return ok;
}

// Rows a and a + W can take non-temporal stores block by block: whole 16-float blocks on 32-byte
// boundaries in both (n a multiple of 8, W of 8, a aligned).
inline bool stream_rows(bool stream, int64_t n, int64_t W, const float* a) {
  return stream && n % 8 == 0 && W % 8 == 0 && reinterpret_cast<uintptr_t>(a) % 32 == 0;
}

// 8 outputs a block: dy masked into the four cell vectors, those interleaved into the two dx rows.
template <bool kStream>
bool max2x2_bwd_rows(int64_t n, const float* dy, const int64_t* idx, int64_t ia, int64_t W,
                     float* a) {
  __m256 all = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 m[4], v[4], any = _mm256_setzero_ps();
    window_cells(idx + j, ia + 2 * j, W, m);
    const __m256 g = _mm256_loadu_ps(dy + j);
    for (int c = 0; c < 4; ++c) {
      v[c] = _mm256_and_ps(m[c], g);
      any = _mm256_or_ps(any, m[c]);
    }
    all = _mm256_and_ps(all, any);
    interleave16<kStream>(a + 2 * j, v[0], v[1]);
    interleave16<kStream>(a + W + 2 * j, v[2], v[3]);
  }
  bool ok = _mm256_movemask_ps(all) == 0xff;
  for (; j < n; ++j) ok &= max2x2_bwd_one(dy[j], idx[j], ia + 2 * j, W, a + 2 * j);
  return ok;
}

bool max2x2_bwd(int64_t n, const float* dy, const int64_t* idx, int64_t ia, int64_t W, float* a,
                bool stream) {
  return stream_rows(stream, n, W, a) ? max2x2_bwd_rows<true>(n, dy, idx, ia, W, a)
                                      : max2x2_bwd_rows<false>(n, dy, idx, ia, W, a);
}

// 8 outputs a block: scale * dy[j] interleaved with itself into both dx rows; rows of 8+
// outputs end with an overlapping block (the same values again), never when streaming (n % 8 is
// 0 there).
template <bool kStream>
void avg2x2_bwd_rows(int64_t n, const float* dy, float scale, int64_t W, float* a) {
  const __m256 s = _mm256_set1_ps(scale);
  if (n < 8) {
    for (int64_t j = 0; j < n; ++j) avg2x2_bwd_one(dy[j], scale, W, a + 2 * j);
    return;
  }
  for (int64_t j = 0;; j += 8) {
    const int64_t at = std::min(j, n - 8);
    const __m256 v = _mm256_mul_ps(s, _mm256_loadu_ps(dy + at));
    interleave16<kStream>(a + 2 * at, v, v);
    interleave16<kStream>(a + W + 2 * at, v, v);
    if (at == n - 8) return;
  }
}

void avg2x2_bwd(int64_t n, const float* dy, float scale, int64_t W, float* a, bool stream) {
  stream_rows(stream, n, W, a) ? avg2x2_bwd_rows<true>(n, dy, scale, W, a)
                               : avg2x2_bwd_rows<false>(n, dy, scale, W, a);
}
