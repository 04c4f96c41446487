// pool__avx2.cpp — AVX2 pooling microkernels (f32): 8 outputs per vector along W (stride 1: one
// load, 2: two loads de-interleaved, larger: a gather), 8 taps per vector for long windows
// (adaptive and global pooling); 2x2 stride-2 windows in pool_2x2_avx2_impl.h, 2-column border
// windows in pool_border_avx2_impl.h; the rest to the scalar loop. Flags: -mavx2 -mfma only.
#include <immintrin.h>

#include <algorithm>
#include <array>

#include "cpu/kernels/pool_ukernel.h"

namespace cnnfast {
namespace {

constexpr int kLanes = 8;

// The 8 values src[0], src[sw], ..., src[7*sw] (lane_off = 0, sw, ..., 7*sw); never reads past
// src[7*sw]. Stride 1: one load; 2: two loads de-interleaved; larger: a gather.
inline __m256 load_strided(const float* src, int64_t sw, __m256i lane_off) {
  if (sw == 1) return _mm256_loadu_ps(src);
  if (sw > 2) return _mm256_i32gather_ps(src, lane_off, 4);
  const __m256 a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + 7);  // 0..7, 7..14
  const __m256 ab = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 2, 0));   // 0 2 8 10 | 4 6 12 14
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ab), _MM_SHUFFLE(3, 1, 2, 0)));
}

// Stride 2 without the lane fix-up: src[0, 2, 8, 10 | 4, 6, 12, 14] (outputs 0 1 4 5 | 2 3 6 7).
// Lane-wise reductions over such loads put their result in output order once, with kS2Order.
inline __m256 load_s2_lanes(const float* src) {
  return _mm256_shuffle_ps(_mm256_loadu_ps(src), _mm256_loadu_ps(src + 7), _MM_SHUFFLE(3, 1, 2, 0));
}
constexpr int kS2Order = _MM_SHUFFLE(3, 1, 2, 0);  // 64-bit pairs: lanes 0 1 4 5 2 3 6 7 -> 0..7

// The 4 taps of 8 windows 4 wide at stride 4 (src[0..31]): tap[t] = src[4o + t] for outputs
// o = 0 2 4 6 | 1 3 5 7 (a 4x8 transpose of four loads).
inline void load_k4s4_taps(const float* src, __m256 tap[4]) {
  const __m256 v0 = _mm256_loadu_ps(src), v1 = _mm256_loadu_ps(src + 8);
  const __m256 v2 = _mm256_loadu_ps(src + 16), v3 = _mm256_loadu_ps(src + 24);
  const __m256 t0 = _mm256_unpacklo_ps(v0, v1), t1 = _mm256_unpackhi_ps(v0, v1);
  const __m256 t2 = _mm256_unpacklo_ps(v2, v3), t3 = _mm256_unpackhi_ps(v2, v3);
  tap[0] = _mm256_shuffle_ps(t0, t2, 0x44);
  tap[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
  tap[2] = _mm256_shuffle_ps(t1, t3, 0x44);
  tap[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
}

// A running max per lane. `best` skips NaNs (vmaxps returns its second operand, best, when v is
// NaN), so its dependency chain is one max per tap; `nan` marks lanes that met a NaN and the
// result is NaN there. step() returns the lanes whose index moves to v's: a strictly greater
// value before any NaN, or the first NaN.
struct Running {
  __m256 best = _mm256_set1_ps(-__builtin_inff());
  __m256 nan = _mm256_setzero_ps();
};
inline __m256 step(Running& s, __m256 v) {
  const __m256 is_nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
  const __m256 take =
      _mm256_andnot_ps(s.nan, _mm256_or_ps(_mm256_cmp_ps(v, s.best, _CMP_GT_OQ), is_nan));
  s.best = _mm256_max_ps(v, s.best);
  s.nan = _mm256_or_ps(s.nan, is_nan);
  return take;
}
inline __m256 result(const Running& s) {
  return _mm256_blendv_ps(s.best, _mm256_set1_ps(__builtin_nanf("")), s.nan);
}

// One tap v (flat indices at) into a block's running max and index. kPlain: no NaN bookkeeping
// (a plain max and a strictly-greater blend); the tap joins `sum`, where a NaN shows up later.
template <bool kIdx, bool kPlain>
inline void max_tap(Running& run, __m256& sum, __m256i& arg, __m256 v, __m256i at) {
  __m256 m;
  if (kPlain) {
    if (kIdx) m = _mm256_cmp_ps(v, run.best, _CMP_GT_OQ);
    run.best = _mm256_max_ps(v, run.best);
    sum = _mm256_add_ps(sum, v);
  } else {
    m = step(run, v);
  }
  if (kIdx)
    arg = _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(arg), _mm256_castsi256_ps(at), m));
}

inline void store_idx(int64_t* idx, __m256i v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx),
                      _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + 4),
                      _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
}

// B blocks of 8 outputs from j0 (B independent running maxima per tap: the taps' compare and
// blend chains of one block are serial, two blocks keep twice as many in flight).
// kPlain: no NaN bookkeeping per tap (a plain max and a strictly-greater blend, i.e. step()
// when no NaN occurs); a NaN input shows in a running sum of the taps, and then the function
// returns false without storing (the caller reruns the block with the exact rule). A false
// alarm (inf + -inf) only costs that rerun.
// kS2 (sw == 2): loads stay in load_s2_lanes' lane order and the results are put in output
// order once, at the store (one lane fix-up a block instead of one a tap).
template <bool kIdx, int B, bool kPlain, bool kS2>
bool max_block(int64_t j0, int64_t nrows, const float* const* rows, const int64_t* row_index,
               int64_t off, int64_t kw, int64_t dw, int64_t sw, float* y, int64_t* idx) {
  off += j0 * sw;
  const __m256i lane_off =
      kS2 ? _mm256_setr_epi32(0, 2, 8, 10, 4, 6, 12, 14)
          : _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                               _mm256_set1_epi32(static_cast<int>(sw)));
  const __m256i block_off = _mm256_set1_epi32(static_cast<int>(kLanes * sw));
  Running run[B];
  __m256 sum[B];
  __m256i arg[B];
  arg[0] = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(row_index[0] + off)), lane_off);
  for (int k = 0; k < B; ++k) {
    if (k > 0) arg[k] = _mm256_add_epi32(arg[k - 1], block_off);
    sum[k] = _mm256_setzero_ps();
  }
  const __m256i tap_step = _mm256_set1_epi32(static_cast<int>(dw));
  for (int64_t r = 0; r < nrows; ++r) {
    const float* src = rows[r] + off;
    // flat indices of block 0's outputs at tap t: one broadcast a row, then a vector add a tap
    __m256i at_t = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(row_index[r] + off)),
                                    lane_off);
    for (int64_t t = 0; t < kw; ++t, at_t = _mm256_add_epi32(at_t, tap_step)) {
      __m256i at = at_t;
      for (int k = 0; k < B; ++k) {
        const float* at_src = src + t * dw + k * kLanes * sw;
        const __m256 v = kS2 ? load_s2_lanes(at_src) : load_strided(at_src, sw, lane_off);
        max_tap<kIdx, kPlain>(run[k], sum[k], arg[k], v, at);
        if (kIdx) at = _mm256_add_epi32(at, block_off);
      }
    }
  }
  if (kPlain) {
    __m256 bad = _mm256_setzero_ps();
    for (int k = 0; k < B; ++k) bad = _mm256_or_ps(bad, _mm256_cmp_ps(sum[k], sum[k], _CMP_UNORD_Q));
    if (_mm256_movemask_ps(bad)) return false;
  }
  for (int k = 0; k < B; ++k) {
    __m256 best = result(run[k]);
    if (kS2) {
      best = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(best), kS2Order));
      if (kIdx) arg[k] = _mm256_permute4x64_epi64(arg[k], kS2Order);
    }
    _mm256_storeu_ps(y + j0 + k * kLanes, best);
    if (kIdx) store_idx(idx + j0 + k * kLanes, arg[k]);
  }
  return true;
}

// max_block for 4-wide windows at stride 4 (dilation 1): per row, the four taps of 8 outputs
// come from four loads and a transpose (load_k4s4_taps' lane order) instead of four gathers;
// the same running max, NaN and index rules as max_block, results put in order at the store.
template <bool kIdx, bool kPlain>
bool max_block_k4s4(int64_t j0, int64_t nrows, const float* const* rows,
                    const int64_t* row_index, int64_t off, float* y, int64_t* idx) {
  off += j0 * 4;
  const __m256i lane_off = _mm256_setr_epi32(0, 8, 16, 24, 4, 12, 20, 28);
  const __m256i one = _mm256_set1_epi32(1);
  Running run;
  __m256 sum = _mm256_setzero_ps();
  __m256i arg = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(row_index[0] + off)), lane_off);
  for (int64_t r = 0; r < nrows; ++r) {
    __m256 tap[4];
    load_k4s4_taps(rows[r] + off, tap);
    __m256i at = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(row_index[r] + off)), lane_off);
    for (int t = 0; t < 4; ++t, at = _mm256_add_epi32(at, one))
      max_tap<kIdx, kPlain>(run, sum, arg, tap[t], at);
  }
  if (kPlain && _mm256_movemask_ps(_mm256_cmp_ps(sum, sum, _CMP_UNORD_Q))) return false;
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  _mm256_storeu_ps(y + j0, _mm256_permutevar8x32_ps(result(run), order));
  if (kIdx) store_idx(idx + j0, _mm256_permutevar8x32_epi32(arg, order));
  return true;
}

// Blocks of 8 outputs from j0: the plain pass, or the exact one where a NaN turned up.
template <bool kIdx, int B>
void max_blocks(int64_t j0, int64_t nrows, const float* const* rows, const int64_t* row_index,
                int64_t off, int64_t kw, int64_t dw, int64_t sw, float* y, int64_t* idx) {
  if (sw == 2) {
    if (!max_block<kIdx, B, true, true>(j0, nrows, rows, row_index, off, kw, dw, sw, y, idx))
      max_block<kIdx, B, false, true>(j0, nrows, rows, row_index, off, kw, dw, sw, y, idx);
    return;
  }
  if (!max_block<kIdx, B, true, false>(j0, nrows, rows, row_index, off, kw, dw, sw, y, idx))
    max_block<kIdx, B, false, false>(j0, nrows, rows, row_index, off, kw, dw, sw, y, idx);
}

// One output, taps vectorised (dw == 1, kw >= 8): lane l keeps the best of taps t ≡ l (mod 8).
void max_one_long(int64_t nrows, const float* const* rows, const int64_t* row_index, int64_t kw,
                  int64_t off, float* y, int64_t* idx) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  Running run;
  __m256i arg = _mm256_set1_epi32(static_cast<int>(row_index[0] + off));
  const int64_t kv = kw / kLanes * kLanes;
  for (int64_t r = 0; r < nrows; ++r)
    for (int64_t t = 0; t < kv; t += kLanes) {
      const __m256 m = step(run, _mm256_loadu_ps(rows[r] + off + t));
      const __m256i at =
          _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(row_index[r] + off + t)), lane);
      arg = _mm256_castps_si256(
          _mm256_blendv_ps(_mm256_castsi256_ps(arg), _mm256_castsi256_ps(at), m));
    }
  alignas(32) float bv[kLanes];
  alignas(32) int32_t bi[kLanes];
  _mm256_store_ps(bv, result(run));
  _mm256_store_si256(reinterpret_cast<__m256i*>(bi), arg);
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

// max_rows for 4-wide windows at stride 4 (dilation 1), n >= 8: blocks of 8, the last one
// overlapping.
template <bool kIdx>
[[gnu::noinline]] void max_rows_k4s4(int64_t n, int64_t nrows, const float* const* rows,
                                     const int64_t* row_index, int64_t off, float* y,
                                     int64_t* idx) {
  for (int64_t j = 0; j < n; j = std::min(j + kLanes, n)) {
    const int64_t at = std::min(j, n - kLanes);
    if (!max_block_k4s4<kIdx, true>(at, nrows, rows, row_index, off, y, idx))
      max_block_k4s4<kIdx, false>(at, nrows, rows, row_index, off, y, idx);
  }
}

void max_rows(int64_t n, int64_t nrows, const float* const* rows, const int64_t* row_index,
              int64_t off, int64_t kw, int64_t dw, int64_t sw, float* y, int64_t* idx) {
  if (sw == 4 && kw == 4 && dw == 1 && n >= kLanes)
    return idx ? max_rows_k4s4<true>(n, nrows, rows, row_index, off, y, idx)
               : max_rows_k4s4<false>(n, nrows, rows, row_index, off, y, idx);
  int64_t j = 0;
  if (n >= kLanes) {
    // Full blocks, then one last block overlapping the previous one (recomputing a few
    // outputs to the same values) instead of a scalar tail.
    for (; j + 2 * kLanes <= n; j += 2 * kLanes)
      idx ? max_blocks<true, 2>(j, nrows, rows, row_index, off, kw, dw, sw, y, idx)
          : max_blocks<false, 2>(j, nrows, rows, row_index, off, kw, dw, sw, y, idx);
    for (; j < n; j = std::min(j + kLanes, n)) {
      const int64_t at = std::min(j, n - kLanes);
      idx ? max_blocks<true, 1>(at, nrows, rows, row_index, off, kw, dw, sw, y, idx)
          : max_blocks<false, 1>(at, nrows, rows, row_index, off, kw, dw, sw, y, idx);
    }
  }
  for (; j < n; ++j) {
    if (dw == 1 && kw >= 2 * kLanes)
      max_one_long(nrows, rows, row_index, kw, off + j * sw, y + j, idx ? idx + j : nullptr);
    else
      max_rows_one(nrows, rows, row_index, kw, dw, off + j * sw, y + j, idx ? idx + j : nullptr);
  }
}

#include "cpu/kernels/avx2_lanes_impl.h"
#include "cpu/kernels/pool_planes_avx2_impl.h"  // sum_planes

// sum_rows with kw == 1, sw == 1 (the column sums of nrows rows): rows streamed in chunks of 4,
// each chunk over the whole width (sequential reads; a column-at-a-time walk over 16 rows left the
// prefetchers behind), partial sums in y; the same order as sum_rows_one per column.
void sum_columns(int64_t n, int64_t nrows, const float* const* rows, int64_t off, float scale,
                 float* y) {
  const int64_t nv = n / kLanes * kLanes;
  for (int64_t r0 = 0; r0 < nrows; r0 += 4) {
    const int64_t r1 = std::min(r0 + 4, nrows);
    const __m256 k = _mm256_set1_ps(r1 == nrows ? scale : 1.0f);
    int64_t j = 0;
    for (; j + 4 * kLanes <= nv; j += 4 * kLanes) {  // four blocks: four add chains in flight
      __m256 acc[4];
      for (int b = 0; b < 4; ++b) acc[b] = r0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(y + j + b * kLanes);
      for (int64_t r = r0; r < r1; ++r) {
        const float* src = rows[r] + off + j;
        for (int b = 0; b < 4; ++b) acc[b] = _mm256_add_ps(acc[b], _mm256_loadu_ps(src + b * kLanes));
      }
      for (int b = 0; b < 4; ++b) _mm256_storeu_ps(y + j + b * kLanes, _mm256_mul_ps(acc[b], k));
    }
    for (; j < nv; j += kLanes) {
      __m256 acc = r0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(y + j);
      for (int64_t r = r0; r < r1; ++r) acc = _mm256_add_ps(acc, _mm256_loadu_ps(rows[r] + off + j));
      _mm256_storeu_ps(y + j, _mm256_mul_ps(acc, k));
    }
  }
  for (int64_t j = nv; j < n; ++j) y[j] = scale * sum_rows_one(nrows, rows, 1, 1, off + j);
}

// sum_rows over one row at stride 2, dilation 1 (avg pooling's across pass after sum_columns):
// taps t and t + 1 are the even and odd columns of the same two loads, summed in their
// de-interleaved lane order and put in output order once a block; a last lone tap loads src + 7
// as load_strided does (never past the window).
void sum_row_s2(int64_t n, const float* src, int64_t kw, float scale, float* y) {
  const __m256 k = _mm256_set1_ps(scale);
  for (int64_t j = 0; j < n; j = std::min(j + kLanes, n)) {  // the last block overlaps
    const float* s = src + 2 * std::min(j, n - kLanes);
    __m256 acc = _mm256_setzero_ps();  // lanes 0 2 8 10 | 4 6 12 14
    int64_t t = 0;
    for (; t + 1 < kw; t += 2) {
      const __m256 lo = _mm256_loadu_ps(s + t), hi = _mm256_loadu_ps(s + t + 8);
      acc = _mm256_add_ps(acc, _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)));
      acc = _mm256_add_ps(acc, _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1)));
    }
    if (t < kw) {
      const __m256 lo = _mm256_loadu_ps(s + t), hi = _mm256_loadu_ps(s + t + 7);
      acc = _mm256_add_ps(acc, _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 2, 0)));
    }
    acc = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(acc), _MM_SHUFFLE(3, 1, 2, 0)));
    _mm256_storeu_ps(y + std::min(j, n - kLanes), _mm256_mul_ps(acc, k));
  }
}

// sum_rows over one row of 4-wide windows at stride 4 (each output reads its own 4 values):
// four loads hold 8 windows, two rounds of pairwise adds sum them (outputs 0 2 4 6 | 1 3 5 7),
// one permute puts them in order; the last block overlaps.
void sum_row_k4s4(int64_t n, const float* src, float scale, float* y) {
  const __m256 k = _mm256_set1_ps(scale);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t j = 0; j < n; j = std::min(j + kLanes, n)) {
    const int64_t at = std::min(j, n - kLanes);
    const float* s = src + 4 * at;
    const __m256 h01 = _mm256_hadd_ps(_mm256_loadu_ps(s), _mm256_loadu_ps(s + 8));
    const __m256 h23 = _mm256_hadd_ps(_mm256_loadu_ps(s + 16), _mm256_loadu_ps(s + 24));
    const __m256 sums = _mm256_permutevar8x32_ps(_mm256_hadd_ps(h01, h23), order);
    _mm256_storeu_ps(y + at, _mm256_mul_ps(sums, k));
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
    const __m256i lane_off = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                                _mm256_set1_epi32(static_cast<int>(sw)));
    for (; j < n; j = std::min(j + kLanes, n)) {  // the last block overlaps, as for max
      const int64_t at = std::min(j, n - kLanes);
      __m256 acc = _mm256_setzero_ps();
      for (int64_t r = 0; r < nrows; ++r) {
        const float* src = rows[r] + off + at * sw;
        for (int64_t t = 0; t < kw; ++t)
          acc = _mm256_add_ps(acc, load_strided(src + t * dw, sw, lane_off));
      }
      _mm256_storeu_ps(y + at, _mm256_mul_ps(acc, _mm256_set1_ps(scale)));
    }
  }
  for (; j < n; ++j) {
    if (dw != 1 || kw < 2 * kLanes) {
      y[j] = scale * sum_rows_one(nrows, rows, kw, dw, off + j * sw);
      continue;
    }
    __m256 acc = _mm256_setzero_ps(), acc1 = acc, acc2 = acc, acc3 = acc;
    float tail = 0;
    const int64_t kv = kw / kLanes * kLanes, kv4 = kw / (4 * kLanes) * (4 * kLanes);
    for (int64_t r = 0; r < nrows; ++r) {
      const float* src = rows[r] + off + j * sw;
      int64_t t = 0;
      for (; t < kv4; t += 4 * kLanes) {  // four chains: bandwidth, not add latency, bounds it
        acc = _mm256_add_ps(acc, _mm256_loadu_ps(src + t));
        acc1 = _mm256_add_ps(acc1, _mm256_loadu_ps(src + t + kLanes));
        acc2 = _mm256_add_ps(acc2, _mm256_loadu_ps(src + t + 2 * kLanes));
        acc3 = _mm256_add_ps(acc3, _mm256_loadu_ps(src + t + 3 * kLanes));
      }
      for (; t < kv; t += kLanes) acc = _mm256_add_ps(acc, _mm256_loadu_ps(src + t));
      for (t = kv; t < kw; ++t) tail += src[t];
    }
    acc = _mm256_add_ps(_mm256_add_ps(acc, acc1), _mm256_add_ps(acc2, acc3));
    y[j] = scale * (hsum8(acc) + tail);
  }
}

#include "cpu/kernels/pool_2x2_avx2_impl.h"
#include "cpu/kernels/pool_gather_avx2_impl.h"
#include "cpu/kernels/pool_border_avx2_impl.h"

}  // namespace

const PoolKernels<float> pool_f32__avx2 = {
    "avx2", &max_rows, &sum_rows, &max_2cols, &max2x2, &sum2x2, &max2x2_bwd, &avg2x2_bwd,
    &unpool2x2_bwd, &combine_rows, &gather_phases, &sum_planes};

}  // namespace cnnfast
