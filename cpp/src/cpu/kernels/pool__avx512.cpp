// pool__avx512.cpp — AVX-512 pooling microkernels (f32): pool__avx2.cpp's kernels with 16 lanes
// and mask registers (stride 2 de-interleaves with one two-source permute, so it needs no
// lane-order variant; 4-wide stride-4 windows are transposed from four loads, not gathered);
// 2x2 windows, their backward, 2-column border windows and avg backward's gathers reuse the AVX2
// code (included at the end). Compiled with the AVX-512 flags only.
// GCC 12's AVX-512 intrinsics start from self-initialised "undefined" vectors, which
// -Wmaybe-uninitialized flags once they are inlined here (GCC bug 105593): a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <array>

#include "cpu/kernels/pool_ukernel.h"

namespace cnnfast {
namespace {

constexpr int kLanes = 16;

// The 16 values src[0], src[sw], ..., src[15*sw] (lane_off = 0, sw, ..., 15*sw); never reads
// past src[15*sw]. Stride 1: one load; 2: two loads de-interleaved; larger: a gather.
inline __m512 load_strided(const float* src, int64_t sw, __m512i lane_off) {
  if (sw == 1) return _mm512_loadu_ps(src);
  if (sw > 2) return _mm512_i32gather_ps(lane_off, src, 4);
  const __m512 a = _mm512_loadu_ps(src), b = _mm512_loadu_ps(src + 15);  // 0..15, 15..30
  const __m512i pick = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 17, 19, 21, 23, 25, 27, 29, 31);
  return _mm512_permutex2var_ps(a, pick, b);
}

// The 4 taps of 16 windows 4 wide at stride 4 (src[0..63]): tap[t] = src[4o + t], the window
// o = 4k + L at lane 4L + k (a 4x4 transpose inside each 128-bit lane of four loads);
// k4s4_order() is the permute that puts such lanes in output order.
inline void load_k4s4_taps(const float* src, __m512 tap[4]) {
  const __m512 v0 = _mm512_loadu_ps(src), v1 = _mm512_loadu_ps(src + 16);
  const __m512 v2 = _mm512_loadu_ps(src + 32), v3 = _mm512_loadu_ps(src + 48);
  const __m512 t0 = _mm512_unpacklo_ps(v0, v1), t1 = _mm512_unpackhi_ps(v0, v1);
  const __m512 t2 = _mm512_unpacklo_ps(v2, v3), t3 = _mm512_unpackhi_ps(v2, v3);
  tap[0] = _mm512_shuffle_ps(t0, t2, 0x44);
  tap[1] = _mm512_shuffle_ps(t0, t2, 0xEE);
  tap[2] = _mm512_shuffle_ps(t1, t3, 0x44);
  tap[3] = _mm512_shuffle_ps(t1, t3, 0xEE);
}
inline __m512i k4s4_order() {
  return _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
}

// A running max per lane, as in pool__avx2.cpp: `best` skips NaNs (vmaxps returns best when v
// is NaN), `nan` marks lanes that met one; step() returns the lanes whose index moves to v's.
struct Running {
  __m512 best = _mm512_set1_ps(-__builtin_inff());
  __mmask16 nan = 0;
};
inline __mmask16 step(Running& s, __m512 v) {
  const __mmask16 is_nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  const __mmask16 take = (_mm512_cmp_ps_mask(v, s.best, _CMP_GT_OQ) | is_nan) & ~s.nan;
  s.best = _mm512_max_ps(v, s.best);
  s.nan |= is_nan;
  return take;
}
inline __m512 result(const Running& s) {
  return _mm512_mask_mov_ps(s.best, s.nan, _mm512_set1_ps(__builtin_nanf("")));
}

inline void store_idx(int64_t* idx, __m512i v) {
  _mm512_storeu_si512(idx, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)));
  _mm512_storeu_si512(idx + 8, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1)));
}

template <bool kIdx>
void max_block(int64_t j0, int64_t nrows, const float* const* rows, const int64_t* row_index,
               int64_t off, int64_t kw, int64_t dw, int64_t sw, float* y, int64_t* idx) {
  off += j0 * sw;
  const __m512i lane_off =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int>(sw)));
  Running run;
  __m512i arg = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(row_index[0] + off)),
                                 lane_off);
  for (int64_t r = 0; r < nrows; ++r) {
    const float* src = rows[r] + off;
    for (int64_t t = 0; t < kw; ++t) {
      const __mmask16 m = step(run, load_strided(src + t * dw, sw, lane_off));
      if (kIdx) {
        const __m512i at = _mm512_add_epi32(
            _mm512_set1_epi32(static_cast<int>(row_index[r] + off + t * dw)), lane_off);
        arg = _mm512_mask_mov_epi32(arg, m, at);
      }
    }
  }
  _mm512_storeu_ps(y + j0, result(run));
  if (kIdx) store_idx(idx + j0, arg);
}

// max_block for 4-wide windows at stride 4 (dilation 1): the taps from load_k4s4_taps instead of
// four gathers, the same running max, NaN and index rules, results put in order at the store.
template <bool kIdx>
void max_block_k4s4(int64_t j0, int64_t nrows, const float* const* rows,
                    const int64_t* row_index, int64_t off, float* y, int64_t* idx) {
  off += j0 * 4;
  const __m512i lane_off =
      _mm512_setr_epi32(0, 16, 32, 48, 4, 20, 36, 52, 8, 24, 40, 56, 12, 28, 44, 60);
  const __m512i one = _mm512_set1_epi32(1);
  Running run;
  __m512i arg = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(row_index[0] + off)),
                                 lane_off);
  for (int64_t r = 0; r < nrows; ++r) {
    __m512 tap[4];
    load_k4s4_taps(rows[r] + off, tap);
    __m512i at = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(row_index[r] + off)),
                                  lane_off);
    for (int t = 0; t < 4; ++t, at = _mm512_add_epi32(at, one)) {
      const __mmask16 m = step(run, tap[t]);
      if (kIdx) arg = _mm512_mask_mov_epi32(arg, m, at);
    }
  }
  _mm512_storeu_ps(y + j0, _mm512_permutexvar_ps(k4s4_order(), result(run)));
  if (kIdx) store_idx(idx + j0, _mm512_permutexvar_epi32(k4s4_order(), arg));
}

// One output, taps vectorised (dw == 1, kw >= 16): lane l keeps the best of taps t ≡ l (mod 16).
void max_one_long(int64_t nrows, const float* const* rows, const int64_t* row_index, int64_t kw,
                  int64_t off, float* y, int64_t* idx) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  Running run;
  __m512i arg = _mm512_set1_epi32(static_cast<int>(row_index[0] + off));
  const int64_t kv = kw / kLanes * kLanes;
  for (int64_t r = 0; r < nrows; ++r)
    for (int64_t t = 0; t < kv; t += kLanes) {
      const __mmask16 m = step(run, _mm512_loadu_ps(rows[r] + off + t));
      const __m512i at =
          _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(row_index[r] + off + t)), lane);
      arg = _mm512_mask_mov_epi32(arg, m, at);
    }
  alignas(64) float bv[kLanes];
  alignas(64) int32_t bi[kLanes];
  _mm512_store_ps(bv, result(run));
  _mm512_store_si512(bi, arg);
  float b = bv[0];
  int64_t a = bi[0];
  for (int l = 1; l < kLanes; ++l) {  // raster order = smaller index among equals / NaNs
    const bool nan_l = bv[l] != bv[l], nan_b = b != b;
    if ((nan_l && (!nan_b || bi[l] < a)) || (!nan_b && (bv[l] > b || (bv[l] == b && bi[l] < a)))) {
      b = bv[l];
      a = bi[l];
    }
  }
  for (int64_t r = 0; r < nrows; ++r)  // the tail taps, in raster order per row
    for (int64_t t = kv; t < kw; ++t) {
      const float v = rows[r][off + t];
      const int64_t i = row_index[r] + off + t;
      if ((v > b) || (v != v && (b == b || i < a)) || (v == b && i < a)) {
        b = v;
        a = i;
      }
    }
  *y = b;
  if (idx) *idx = a;
}

void max_rows(int64_t n, int64_t nrows, const float* const* rows, const int64_t* row_index,
              int64_t off, int64_t kw, int64_t dw, int64_t sw, float* y, int64_t* idx) {
  if (sw == 4 && kw == 4 && dw == 1 && n >= kLanes) {
    for (int64_t j = 0; j < n; j = std::min(j + kLanes, n)) {  // the last block overlaps
      const int64_t at = std::min(j, n - kLanes);
      idx ? max_block_k4s4<true>(at, nrows, rows, row_index, off, y, idx)
          : max_block_k4s4<false>(at, nrows, rows, row_index, off, y, idx);
    }
    return;
  }
  int64_t j = 0;
  if (n >= kLanes) {
    // Full blocks, then one last block overlapping the previous one (recomputing a few
    // outputs to the same values) instead of a scalar tail.
    for (; j < n; j = std::min(j + kLanes, n)) {
      const int64_t at = std::min(j, n - kLanes);
      idx ? max_block<true>(at, nrows, rows, row_index, off, kw, dw, sw, y, idx)
          : max_block<false>(at, nrows, rows, row_index, off, kw, dw, sw, y, idx);
    }
  }
  for (; j < n; ++j) {
    if (dw == 1 && kw >= 2 * kLanes)
      max_one_long(nrows, rows, row_index, kw, off + j * sw, y + j, idx ? idx + j : nullptr);
    else
      max_rows_one(nrows, rows, row_index, kw, dw, off + j * sw, y + j, idx ? idx + j : nullptr);
  }
}

// sum_rows with kw == 1, sw == 1 (the column sums of nrows rows): rows streamed in chunks of 4,
// each chunk over the whole width (sequential reads; a column-at-a-time walk over 16 rows left the
// prefetchers behind), partial sums in y; the same order as sum_rows_one per column.
void sum_columns(int64_t n, int64_t nrows, const float* const* rows, int64_t off, float scale,
                 float* y) {
  const int64_t nv = n / kLanes * kLanes;
  for (int64_t r0 = 0; r0 < nrows; r0 += 4) {
    const int64_t r1 = std::min(r0 + 4, nrows);
    const __m512 k = _mm512_set1_ps(r1 == nrows ? scale : 1.0f);
    int64_t j = 0;
    for (; j + 4 * kLanes <= nv; j += 4 * kLanes) {  // four blocks: four add chains in flight
      __m512 acc[4];
      for (int b = 0; b < 4; ++b) acc[b] = r0 == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(y + j + b * kLanes);
      for (int64_t r = r0; r < r1; ++r) {
        const float* src = rows[r] + off + j;
        for (int b = 0; b < 4; ++b) acc[b] = _mm512_add_ps(acc[b], _mm512_loadu_ps(src + b * kLanes));
      }
      for (int b = 0; b < 4; ++b) _mm512_storeu_ps(y + j + b * kLanes, _mm512_mul_ps(acc[b], k));
    }
    for (; j < nv; j += kLanes) {
      __m512 acc = r0 == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(y + j);
      for (int64_t r = r0; r < r1; ++r) acc = _mm512_add_ps(acc, _mm512_loadu_ps(rows[r] + off + j));
      _mm512_storeu_ps(y + j, _mm512_mul_ps(acc, k));
    }
  }
  for (int64_t j = nv; j < n; ++j) y[j] = scale * sum_rows_one(nrows, rows, 1, 1, off + j);
}

// sum_rows over one row at stride 2, dilation 1 (avg pooling's across pass after sum_columns):
// taps t and t + 1 are the even and odd columns of the same two loads, summed in their
// de-interleaved lane order (outputs 2L, 2L+1, 8+2L, 9+2L in 128-bit lane L) and put in output
// order once a block; a last lone tap loads src + 15 as load_strided does (never past the window).
void sum_row_s2(int64_t n, const float* src, int64_t kw, float scale, float* y) {
  const __m512 k = _mm512_set1_ps(scale);
  const __m512i pairs = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
  for (int64_t j = 0; j < n; j = std::min(j + kLanes, n)) {  // the last block overlaps
    const float* s = src + 2 * std::min(j, n - kLanes);
    __m512 acc = _mm512_setzero_ps();
    int64_t t = 0;
    for (; t + 1 < kw; t += 2) {
      const __m512 lo = _mm512_loadu_ps(s + t), hi = _mm512_loadu_ps(s + t + 16);
      acc = _mm512_add_ps(acc, _mm512_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)));
      acc = _mm512_add_ps(acc, _mm512_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1)));
    }
    if (t < kw) {
      const __m512 lo = _mm512_loadu_ps(s + t), hi = _mm512_loadu_ps(s + t + 15);
      acc = _mm512_add_ps(acc, _mm512_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 2, 0)));
    }
    acc = _mm512_castpd_ps(_mm512_permutexvar_pd(pairs, _mm512_castps_pd(acc)));
    _mm512_storeu_ps(y + std::min(j, n - kLanes), _mm512_mul_ps(acc, k));
  }
}

// sum_rows over one row of 4-wide windows at stride 4: the taps of 16 windows from
// load_k4s4_taps, summed (t0 + t1) + (t2 + t3) as pool__avx2.cpp's horizontal adds do.
void sum_row_k4s4(int64_t n, const float* src, float scale, float* y) {
  const __m512 k = _mm512_set1_ps(scale);
  for (int64_t j = 0; j < n; j = std::min(j + kLanes, n)) {  // the last block overlaps
    const int64_t at = std::min(j, n - kLanes);
    __m512 tap[4];
    load_k4s4_taps(src + 4 * at, tap);
    const __m512 sums =
        _mm512_add_ps(_mm512_add_ps(tap[0], tap[1]), _mm512_add_ps(tap[2], tap[3]));
    _mm512_storeu_ps(y + at, _mm512_mul_ps(_mm512_permutexvar_ps(k4s4_order(), sums), k));
  }
}

void sum_rows(int64_t n, int64_t nrows, const float* const* rows, int64_t off, int64_t kw,
              int64_t dw, int64_t sw, float scale, float* y) {
  if (kw == 1 && sw == 1) return sum_columns(n, nrows, rows, off, scale, y);
  if (nrows == 1 && sw == 2 && dw == 1 && n >= kLanes)
    return sum_row_s2(n, rows[0] + off, kw, scale, y);
  if (nrows == 1 && sw == 4 && kw == 4 && dw == 1 && n >= kLanes)
    return sum_row_k4s4(n, rows[0] + off, scale, y);
  int64_t j = 0;
  if (n >= kLanes) {
    const __m512i lane_off =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(static_cast<int>(sw)));
    for (; j < n; j = std::min(j + kLanes, n)) {  // the last block overlaps, as for max
      const int64_t at = std::min(j, n - kLanes);
      __m512 acc = _mm512_setzero_ps();
      for (int64_t r = 0; r < nrows; ++r) {
        const float* src = rows[r] + off + at * sw;
        for (int64_t t = 0; t < kw; ++t)
          acc = _mm512_add_ps(acc, load_strided(src + t * dw, sw, lane_off));
      }
      _mm512_storeu_ps(y + at, _mm512_mul_ps(acc, _mm512_set1_ps(scale)));
    }
  }
  for (; j < n; ++j) {
    if (dw != 1 || kw < 2 * kLanes) {
      y[j] = scale * sum_rows_one(nrows, rows, kw, dw, off + j * sw);
      continue;
    }
    __m512 acc = _mm512_setzero_ps(), acc1 = acc, acc2 = acc, acc3 = acc;
    float tail = 0;
    const int64_t kv = kw / kLanes * kLanes, kv4 = kw / (4 * kLanes) * (4 * kLanes);
    for (int64_t r = 0; r < nrows; ++r) {
      const float* src = rows[r] + off + j * sw;
      int64_t t = 0;
      for (; t < kv4; t += 4 * kLanes) {  // four chains: bandwidth, not add latency, bounds it
        acc = _mm512_add_ps(acc, _mm512_loadu_ps(src + t));
        acc1 = _mm512_add_ps(acc1, _mm512_loadu_ps(src + t + kLanes));
        acc2 = _mm512_add_ps(acc2, _mm512_loadu_ps(src + t + 2 * kLanes));
        acc3 = _mm512_add_ps(acc3, _mm512_loadu_ps(src + t + 3 * kLanes));
      }
      for (; t < kv; t += kLanes) acc = _mm512_add_ps(acc, _mm512_loadu_ps(src + t));
      for (t = kv; t < kw; ++t) tail += src[t];
    }
    acc = _mm512_add_ps(_mm512_add_ps(acc, acc1), _mm512_add_ps(acc2, acc3));
    y[j] = scale * (_mm512_reduce_add_ps(acc) + tail);
  }
}

#include "cpu/kernels/avx2_lanes_impl.h"
#include "cpu/kernels/pool_2x2_avx2_impl.h"
#include "cpu/kernels/pool_gather_avx2_impl.h"
#include "cpu/kernels/pool_border_avx2_impl.h"
#include "cpu/kernels/pool_planes_avx2_impl.h"

}  // namespace

const PoolKernels<float> pool_f32__avx512 = {
    "avx512", &max_rows, &sum_rows, &max_2cols, &max2x2, &sum2x2, &max2x2_bwd, &avg2x2_bwd,
    &unpool2x2_bwd, &combine_rows, &gather_phases, &sum_planes};

}  // namespace cnnfast
