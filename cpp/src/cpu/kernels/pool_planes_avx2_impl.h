// pool_planes_avx2_impl.h — global average pooling's sum over whole planes in AVX registers,
// shared by the AVX2 and AVX-512 pooling files (each builds it with its own flags):
//   y[p] = scale · Σ_{i<n} x[p·n + i]      (p < planes; x is (planes, n), contiguous)
// Four 8-lane chains and a masked tail a plane, one call for many planes (a call a plane cost
// 6-9 ns: ResNet's 7x7 planes ran at 0.5x torch). Planes under 8 elements sum in scalar order.
// Included inside the file's anonymous namespace, after <immintrin.h> and avx2_lanes_impl.h.
#pragma once

void sum_planes(int64_t planes, int64_t n, const float* x, float scale, float* y) {
  if (n < 8) {
    for (int64_t p = 0; p < planes; ++p, x += n) {
      float s = 0.f;
      for (int64_t i = 0; i < n; ++i) s += x[i];
      y[p] = scale * s;
    }
    return;
  }
  const int64_t tail = n % 8, body = n - tail;
  const __m256i mask =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(int(tail)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (int64_t p = 0; p < planes; ++p, x += n) {
    __m256 a0 = _mm256_loadu_ps(x), a1 = _mm256_setzero_ps(), a2 = a1, a3 = a1;
    int64_t t = 8;
    for (; t + 32 <= body; t += 32) {  // four chains: bandwidth, not add latency, bounds it
      a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + t));
      a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + t + 8));
      a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + t + 16));
      a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + t + 24));
    }
    for (; t < body; t += 8) a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + t));
    if (tail) a2 = _mm256_add_ps(a2, _mm256_maskload_ps(x + body, mask));
    y[p] = scale * hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  }
}
