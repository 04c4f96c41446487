// pool_rows.h — what the pooling row loops (pool_planes.cpp, pool_avg_backward.cpp) share: the
// per-dim windows of a call with the W range that needs no clipping, a per-row scratch, and a
// bounded prefetch of the lines a loop will need a few rows on.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "cnnfast/pool.h"

namespace cnnfast::cpu {

struct Plan {
  std::vector<PoolWindow> wd, wh, ww;
  int64_t lo = 0, hi = 0;  // outputs [lo, hi) along W have full, unclipped windows
};

inline Plan make_plan(const PoolParams& p) {
  Plan pl{pool_windows(p, 0), pool_windows(p, 1), pool_windows(p, 2)};
  if (!p.adaptive) {
    const int64_t s = p.stride[2], last = p.in[2] - 1 - (p.kernel[2] - 1) * p.dil[2] + p.pad[2];
    pl.lo = std::min((p.pad[2] + s - 1) / s, p.out[2]);
    pl.hi = last < 0 ? pl.lo : std::max(pl.lo, std::min(p.out[2], last / s + 1));
  }
  return pl;
}

// A per-row scratch of n values of U: on the stack up to kSmall, else the thread's heap block
// (a thread_local lookup per row costs more than a 3x3 row's pooling, so only long rows and tall
// windows pay it). One live instance per (U, kSmall) per thread: they share that heap block.
template <class U, int64_t kSmall>
struct RowScratch {
  U small[kSmall];
  U* data;
  explicit RowScratch(int64_t n) : data(small) {
    if (n <= kSmall) return;
    thread_local std::vector<U> big;
    big.resize(static_cast<size_t>(n));
    data = big.data();
  }
};
constexpr int64_t kRowValues = 1024, kWindowRows = 64;  // RowScratch stack sizes

// Asks for the cache lines of bytes [from, from + n) of an array of size bytes at base, ahead of
// their use: a hint that never faults, clipped to the array so no pointer leaves it.
// kWrite: 0 to read them, 1 to write them (the line arrives owned, ready for the stores).
template <int kWrite>
inline void prefetch_lines(const void* base, int64_t size, int64_t from, int64_t n) {
#if defined(__GNUC__) || defined(__clang__)
  const char* b = static_cast<const char*>(base);
  for (int64_t o = std::max<int64_t>(from, 0); o < std::min(from + n, size); o += 64)
    __builtin_prefetch(b + o, kWrite, 3);
#endif
}

// Whether a loop may write an output of `bytes` with non-temporal stores: one larger than this
// machine's last-level cache (32 MiB here) would leave it long before the layer below reads it,
// so its rows bypass the cache (no line fill before the write; for_each_raster fences). Smaller
// outputs stay in cache for that layer.
inline bool stream_output(int64_t bytes) { return bytes >= (int64_t(32) << 20); }

// A 2x2 window without padding: 1/4, or the override.
template <class T>
T avg_2x2_scale(const AvgOptions& o) {
  return o.divisor_override > 0 ? T(1) / T(o.divisor_override) : T(1) / T(4);
}

}  // namespace cnnfast::cpu
