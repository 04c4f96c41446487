// pool_gather_avx2_impl.h — avg pooling's backward microkernels (contract in pool_ukernel.h) in
// 256-bit AVX2. combine_rows: 8 outputs a block, the scaled grad rows summed in row order.
// Up to 3 rows (combine) and 3 taps a phase (stride-2 gather) run unrolled at compile time.
// gather_phases (along W): stride 1 sums ntaps[0] shifted loads per 8 outputs; stride 2 sums the
// even and the odd phase's loads for 8 j's and interleaves them into 16 dx; stride 4 transposes
// the four phases' sums for 8 j's into 32 dx; other strides and rows shorter than a block run
// the scalar loop (same order: every ISA gives the same bits).
// Row tails are one overlapping block (outputs are written, never read, so again the same
// values). pool__avx2.cpp and pool__avx512.cpp include this inside their anonymous namespace,
// after pool_2x2_avx2_impl.h (interleave16).
#pragma once
// (included after <immintrin.h>, <algorithm>, <array>, pool_ukernel.h and pool_2x2_avx2_impl.h)

// 8 outputs a block, the row tail as one overlapping block (y is written, never read). R > 0:
// exactly R rows, their pointers and factors held in registers (the per-row loop and its exit
// cost as much as the adds for the 1-3 rows of small windows); R = 0: any nrows.
template <int R>
void combine_rows_n(int64_t n, int64_t nrows, const float* const* rows, const float* f,
                    const float* colscale, float* y) {
  const float* rp[R > 0 ? R : 1];
  __m256 fv[R > 0 ? R : 1];
  for (int r = 0; r < R; ++r) {
    rp[r] = rows[r];
    fv[r] = _mm256_set1_ps(f[r]);
  }
  for (int64_t j = 0; j < n; j = std::min(j + 8, n)) {
    const int64_t at = std::min(j, n - 8);
    __m256 acc = _mm256_setzero_ps();
    if (R > 0) {
      for (int r = 0; r < R; ++r)
        acc = _mm256_add_ps(acc, _mm256_mul_ps(fv[r], _mm256_loadu_ps(rp[r] + at)));
    } else {
      for (int64_t r = 0; r < nrows; ++r)
        acc = _mm256_add_ps(acc,
                            _mm256_mul_ps(_mm256_set1_ps(f[r]), _mm256_loadu_ps(rows[r] + at)));
    }
    _mm256_storeu_ps(y + at, _mm256_mul_ps(acc, _mm256_loadu_ps(colscale + at)));
  }
}

void combine_rows(int64_t n, int64_t nrows, const float* const* rows, const float* f,
                  const float* colscale, float* y) {
  if (n < 8) return combine_rows_from(int64_t(0), n, nrows, rows, f, colscale, y);
  switch (nrows) {
    case 1: return combine_rows_n<1>(n, nrows, rows, f, colscale, y);
    case 2: return combine_rows_n<2>(n, nrows, rows, f, colscale, y);
    case 3: return combine_rows_n<3>(n, nrows, rows, f, colscale, y);
    default: return combine_rows_n<0>(n, nrows, rows, f, colscale, y);
  }
}

// Σ_i src[offs[i] + 0..7], in i order.
inline __m256 sum_taps8(const float* src, int64_t ntaps, const int64_t* offs) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < ntaps; ++i) acc = _mm256_add_ps(acc, _mm256_loadu_ps(src + offs[i]));
  return acc;
}

// Stride 2 with N0 and N1 taps in the two phases (each at most 3: windows up to 6 wide), the
// offsets held in registers; the same sums in the same order as sum_taps8. Returns the first w
// not written (odd n leaves the last element to the scalar tail). kStream: dx is 32-byte
// aligned and n a multiple of 16, every block stored whole with non-temporal stores.
template <int N0, int N1, bool kStream>
int64_t gather_stride2(int64_t n, int64_t kt, const int64_t* offs, const float* src, float* dx) {
  int64_t o0[N0 > 0 ? N0 : 1], o1[N1 > 0 ? N1 : 1];
  for (int i = 0; i < N0; ++i) o0[i] = offs[i];
  for (int i = 0; i < N1; ++i) o1[i] = offs[kt + i];
  const int64_t last = (n - 16) & ~int64_t(1);  // blocks start at even w (phase 0 first)
  for (int64_t w = 0;; w += 16) {
    const int64_t at = std::min(w, last), j = at / 2;
    __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();
    for (int i = 0; i < N0; ++i) even = _mm256_add_ps(even, _mm256_loadu_ps(src + j + o0[i]));
    for (int i = 0; i < N1; ++i) odd = _mm256_add_ps(odd, _mm256_loadu_ps(src + j + o1[i]));
    interleave16<kStream>(dx + at, even, odd);
    if (at == last) return last + 16;
  }
}

using GatherStride2 = int64_t (*)(int64_t, int64_t, const int64_t*, const float*, float*);
template <bool kStream, int N0, int... N1>
constexpr std::array<GatherStride2, sizeof...(N1)> gather_stride2_row() {
  return {&gather_stride2<N0, N1, kStream>...};
}
// [stream][n0][n1] for phases of up to 3 taps each
template <bool kS>
constexpr std::array<std::array<GatherStride2, 4>, 4> gather_stride2_table() {
  return {gather_stride2_row<kS, 0, 0, 1, 2, 3>(), gather_stride2_row<kS, 1, 0, 1, 2, 3>(),
          gather_stride2_row<kS, 2, 0, 1, 2, 3>(), gather_stride2_row<kS, 3, 0, 1, 2, 3>()};
}
constexpr std::array<std::array<std::array<GatherStride2, 4>, 4>, 2> kGatherStride2 = {
    gather_stride2_table<false>(), gather_stride2_table<true>()};

// Stride 4 (e.g. 4-wide windows at stride 4): the four phases' sums for 8 j's, transposed in
// registers into dx[4j .. 4j + 32). Returns the first w not written.
int64_t gather_stride4(int64_t n, int64_t kt, const int64_t* ntaps, const int64_t* offs,
                       const float* src, float* dx) {
  int64_t j = 0;
  for (; 4 * (j + 8) <= n; j += 8) {
    __m256 p[4];
    for (int f = 0; f < 4; ++f) p[f] = sum_taps8(src + j, ntaps[f], offs + f * kt);
    const __m256 t0 = _mm256_unpacklo_ps(p[0], p[1]), t1 = _mm256_unpackhi_ps(p[0], p[1]);
    const __m256 t2 = _mm256_unpacklo_ps(p[2], p[3]), t3 = _mm256_unpackhi_ps(p[2], p[3]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);  // j 0|4, 1|5
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);  // j 2|6, 3|7
    float* d = dx + 4 * j;
    _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u1, 0x20));
    _mm256_storeu_ps(d + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
    _mm256_storeu_ps(d + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
    _mm256_storeu_ps(d + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
  }
  return 4 * j;
}

// stream: only stride-2 rows with phases of up to 3 taps stream (3x3 stride-2 windows, say),
// and only those whose blocks cover whole aligned 32-byte halves (n a multiple of 16, dx aligned).
void gather_phases(int64_t n, int64_t s, int64_t kt, const int64_t* ntaps, const int64_t* offs,
                   const float* src, float* dx, bool stream) {
  if (s == 4 && n >= 32)
    return gather_phases_from(gather_stride4(n, kt, ntaps, offs, src, dx), n, s, kt, ntaps, offs,
                              src, dx);
  if (s == 2 && n >= 16 && ntaps[0] <= 3 && ntaps[1] <= 3) {
    const bool whole = stream && n % 16 == 0 && reinterpret_cast<uintptr_t>(dx) % 32 == 0;
    const int64_t done = kGatherStride2[whole][ntaps[0]][ntaps[1]](n, kt, offs, src, dx);
    return gather_phases_from(done, n, s, kt, ntaps, offs, src, dx);
  }
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
