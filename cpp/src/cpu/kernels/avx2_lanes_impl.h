// avx2_lanes_impl.h — register shuffles several AVX2 kernels share: an 8x8 transpose of eight
// ymm rows, the interleave of two vectors into 16 consecutive floats, the horizontal sum. Included inside each
// kernel file's anonymous namespace (internal linkage: every copy is built with its own file's
// ISA flags — an inline function shared across files would let the linker keep an AVX-512 build
// of it for the AVX2 path).
#pragma once
// (included after <immintrin.h>; no includes here)
// Always inlined and fully unrolled, so the rows stay in registers: passed through the stack, an
// AVX-512 build reloads two 32-byte row stores as one 64-byte load, which cannot be
// store-forwarded (the implicit tile's channel-row store spent a quarter of alexnet_conv1's
// forward stalled there). Callers index their row arrays with constants for the same reason.
#define CNNFAST_LANES_INLINE inline __attribute__((always_inline))

// r[q] <- column q of the 8x8 block whose rows are r[0..7] (unpack, shuffle, lane permute).
CNNFAST_LANES_INLINE void transpose8x8(__m256 r[8]) {
  __m256 t[8];
#pragma GCC unroll 4
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
#pragma GCC unroll 2
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // r[0..3]: columns 0-3 of rows 0-3 (low lanes) and columns 4-7 of them (high lanes); r[4..7]
  // the same for rows 4-7.
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q) {
    t[q] = _mm256_permute2f128_ps(r[q], r[q + 4], 0x20);
    t[q + 4] = _mm256_permute2f128_ps(r[q], r[q + 4], 0x31);
  }
#pragma GCC unroll 8
  for (int q = 0; q < 8; ++q) r[q] = t[q];
}

// dst[0..15] = even[0], odd[0], even[1], odd[1], ... kStream: dst is 32-byte aligned, written
// with non-temporal stores (the caller fences).
template <bool kStream = false>
CNNFAST_LANES_INLINE void interleave16(float* dst, __m256 even, __m256 odd) {
  const __m256 lo = _mm256_unpacklo_ps(even, odd), hi = _mm256_unpackhi_ps(even, odd);
  if (kStream) {
    _mm256_stream_ps(dst, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_stream_ps(dst + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  } else {
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(dst + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
}

// The even and odd floats of (lo, hi) = src[0..15]: src[0], src[2], ..., src[14] and src[1],
// src[3], ..., src[15] (interleave16's inverse).
CNNFAST_LANES_INLINE void deinterleave16(__m256 lo, __m256 hi, __m256& even, __m256& odd) {
  const __m256 e = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));  // 0 2 8 10 | 4 6 12 14
  const __m256 o = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));  // 1 3 9 11 | 5 7 13 15
  even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
  odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}

// The sum of v's eight lanes.
CNNFAST_LANES_INLINE float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
