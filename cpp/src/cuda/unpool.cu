// unpool.cu — max-unpooling on CUDA, x and idx (planes, in_count), y (planes, out_count). Where
// several inputs share an index the LAST in raster order wins, as on the CPU: a first pass claims
// each output slot with atomicMax(j + 1) (and checks every index), a second pass lets only the
// claimant write (forward) or read back (backward, its exact adjoint; others get 0).
// When the caller passes the pooling windows that made the switches (pool_fast.cuh's 32-bit
// fast path: regular windows, dilation 1, int-sized), one pass suffices: forward — windows that
// tile the plane write their whole block (x at the switch, 0 elsewhere); other 2-D / 1-D ones
// write their stride-sized cell of y whole from the few windows that reach it (forward_cell2d);
// 3-D ones, on a zeroed y, write x at their switch unless a later window (raster order) has the
// same switch — and backward reads dy at its switch under the same rule. Valid while every
// switch lies inside its own window (then only covering windows can share a slot); that is
// checked in the same pass, and a violation (or an out-of-range index) reruns the claim path
// above, which reports bad indices — or, for switches max_pool made, is reported at the next
// synchronization without the host waiting for it (runtime.cuh's WindowCheck).
#include <algorithm>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/pool_fast.cuh"
#include "cuda/runtime.cuh"

namespace cnnfast::cuda {
namespace {

// ---- one input element j each (the kernels run these in grid-stride loops) ----------------------
CNNFAST_HD inline void claim_one(int64_t j, int64_t in_count, int64_t out_count,
                                 const int64_t* idx, unsigned long long* winner, long long* flag) {
  const int64_t i = idx[j];
  if (i < 0 || i >= out_count) {
    report_error(flag, i);
    return;
  }
  atomic_max(&winner[(j / in_count) * out_count + i],
             static_cast<unsigned long long>(j % in_count) + 1ull);
}

CNNFAST_HD inline bool is_winner(int64_t j, int64_t in_count, int64_t slot,
                                 const unsigned long long* winner) {
  return winner[slot] == static_cast<unsigned long long>(j % in_count) + 1ull;
}

CNNFAST_HD inline void forward_one(int64_t j, int64_t in_count, int64_t out_count, float* y,
                                   const float* x, const int64_t* idx,
                                   const unsigned long long* winner) {
  const int64_t slot = (j / in_count) * out_count + idx[j];
  if (is_winner(j, in_count, slot, winner)) y[slot] = x[j];
}

CNNFAST_HD inline void backward_one(int64_t j, int64_t in_count, int64_t out_count, float* dx,
                                    const float* dy, const int64_t* idx,
                                    const unsigned long long* winner) {
  const int64_t slot = (j / in_count) * out_count + idx[j];
  dx[j] = is_winner(j, in_count, slot, winner) ? dy[slot] : 0.f;
}

__global__ void unpool_claim_kernel(int64_t total, int64_t in_count, int64_t out_count,
                                    const int64_t* idx, unsigned long long* winner,
                                    long long* flag) {
  CNNFAST_GRID_STRIDE(j, total) { claim_one(j, in_count, out_count, idx, winner, flag); }
}

__global__ void unpool_forward_kernel(int64_t total, int64_t in_count, int64_t out_count,
                                      float* y, const float* x, const int64_t* idx,
                                      const unsigned long long* winner) {
  CNNFAST_GRID_STRIDE(j, total) { forward_one(j, in_count, out_count, y, x, idx, winner); }
}

__global__ void unpool_backward_kernel(int64_t total, int64_t in_count, int64_t out_count,
                                       float* dx, const float* dy, const int64_t* idx,
                                       const unsigned long long* winner) {
  CNNFAST_GRID_STRIDE(j, total) { backward_one(j, in_count, out_count, dx, dy, idx, winner); }
}

// ---- the one-pass fast paths (pool_fast.cuh): g.in = the unpooled plane, g.out = the pooled --
// Whether window j is the last (raster order) of the windows with switch v: no later covering
// window has it (then j's x owns the slot, and j's dx is the slot's dy).
CNNFAST_HD inline bool last_writer(const fast::Geo& g, int j, int plane, int64_t v,
                                   const int64_t* idx) {
  bool last = true;
  fast::covering_windows(g, plane, v, [&](int o) {
    if (o > j && idx[o] == v) last = false;
    return last;
  });
  return last;
}

// Window j's share of the unpooling forward (y zeroed before): y[switch] = x[j] unless a later
// window (raster order) has the same switch — the last writer wins, as on the CPU.
CNNFAST_HD inline void forward_fast(const fast::Geo& g, int j, float* y, const float* x,
                                    const int64_t* idx, long long* outside) {
  fast::Pos at;
  int64_t v;
  if (!fast::own_switch(g, j, idx, outside, &at, &v)) return;
  if (last_writer(g, j, at.plane, v, idx)) y[int64_t(at.plane) * g.in_plane + v] = x[j];
}

// 2-D / 1-D windows whose cells each see at most (M+1)² windows: window o writes its cell of y —
// rows [oh·s − pad, oh·s − pad + s) clipped to the plane (the last cell also the tail), columns
// likewise; the cells tile the plane — whole, so y needs no zeroing pass. As every switch lies
// inside its own window (checked here for window o), only windows (oh − a, ow − b), a, b ≤ M =
// ⌊(k − 1)/s⌋, can point into the cell: an element gets x of the last of them (raster order)
// whose switch it is, else 0.
template <int M>
CNNFAST_HD inline void forward_cell2d(const fast::Geo& g, int o, float* y, const float* x,
                                      const int64_t* idx, long long* outside) {
  fast::Pos at;
  int64_t v;
  fast::own_switch(g, o, idx, outside, &at, &v);
  int64_t sw[M + 1][M + 1];
  float xv[M + 1][M + 1];
CNNFAST_UNROLL
  for (int a = 0; a <= M; ++a)
CNNFAST_UNROLL
    for (int b = 0; b <= M; ++b) {
      const bool there = at.h >= a && at.w >= b;
      const int j = o - a * g.out[2] - b;
      sw[a][b] = there ? idx[j] : -1;
      xv[a][b] = there ? x[j] : 0.f;
    }
  const int h0 = at.h * g.s[1] - g.pad[1], w0 = at.w * g.s[2] - g.pad[2];
  const int h_end = at.h == g.out[1] - 1 ? g.in[1] : fast::imin(h0 + g.s[1], g.in[1]);
  const int w_end = at.w == g.out[2] - 1 ? g.in[2] : fast::imin(w0 + g.s[2], g.in[2]);
  float* plane = y + int64_t(at.plane) * g.in_plane;
  for (int h = fast::imax(h0, 0); h < h_end; ++h)
    for (int w = fast::imax(w0, 0); w < w_end; ++w) {
      const int e = h * g.in[2] + w;
      float val = 0.f;
CNNFAST_UNROLL
      for (int a = M; a >= 0; --a)
CNNFAST_UNROLL
        for (int b = M; b >= 0; --b)
          if (sw[a][b] == e) val = xv[a][b];
      plane[e] = val;
    }
}

// fn(std::integral_constant<int, M>) for forward_cell2d's M when it applies to g (2-D or 1-D
// windows, M <= 2; the callers take windows that tile the plane to forward_tile first); false
// otherwise.
template <class Fn>
bool with_cell_reach(const fast::Geo& g, Fn&& fn) {
  if (g.in[0] != 1 || g.out[0] != 1) return false;
  const int m = std::max((g.k[1] - 1) / g.s[1], (g.k[2] - 1) / g.s[2]);
  if (m == 0) fn(std::integral_constant<int, 0>{});
  else if (m == 1) fn(std::integral_constant<int, 1>{});
  else if (m == 2) fn(std::integral_constant<int, 2>{});
  return m <= 2;
}

// dx[j] = dy[switch of j] unless a later window has the same switch (its slot was overwritten).
CNNFAST_HD inline void backward_fast(const fast::Geo& g, int j, float* dx, const float* dy,
                                     const int64_t* idx, long long* outside) {
  dx[j] = 0.f;
  fast::Pos at;
  int64_t v;
  if (!fast::own_switch(g, j, idx, outside, &at, &v)) return;
  if (last_writer(g, j, at.plane, v, idx)) dx[j] = dy[int64_t(at.plane) * g.in_plane + v];
}

// Window o of tiling windows writes its y block: x[o] at the switch, 0 elsewhere.
CNNFAST_HD inline void forward_tile(const fast::Geo& g, int o, float* y, const float* x,
                                    const int64_t* idx, long long* outside) {
  const float v = x[o];
  fast::tile_block(g, o, idx, outside, [&](int e, bool hit) { y[e] = hit ? v : 0.f; });
}

__global__ void unpool_forward_tiled_kernel(fast::Geo g, int total, float* y, const float* x,
                                            const int64_t* idx, long long* outside) {
  CNNFAST_GRID_STRIDE_INT(o, total) { forward_tile(g, o, y, x, idx, outside); }
}

template <int M>
__global__ void unpool_forward_cell2d_kernel(fast::Geo g, int total, float* y, const float* x,
                                             const int64_t* idx, long long* outside) {
  CNNFAST_GRID_STRIDE_INT(o, total) { forward_cell2d<M>(g, o, y, x, idx, outside); }
}

__global__ void unpool_forward_fast_kernel(fast::Geo g, int total, float* y, const float* x,
                                           const int64_t* idx, long long* outside) {
  CNNFAST_GRID_STRIDE_INT(e, total) { forward_fast(g, e, y, x, idx, outside); }
}

__global__ void unpool_backward_fast_kernel(fast::Geo g, int total, float* dx, const float* dy,
                                            const int64_t* idx, long long* outside) {
  CNNFAST_GRID_STRIDE_INT(j, total) { backward_fast(g, j, dx, dy, idx, outside); }
}

// The windows, as a fast::Geo, when the one-pass paths apply to p.
bool fast_geo(const UnpoolParams& p, const PoolParams* w, fast::Geo* g) {
  return w && p.planes * p.in_count > 0 && fast::geo_of(*w, true, g) &&
         w->planes() == p.planes && w->in_plane() == p.out_count &&
         w->out_plane() == p.in_count && fast::windows_nonempty(*g);
}

void throw_bad_index(int64_t v, int64_t out_count) {
  throw std::invalid_argument("indices: value " + std::to_string(v) + " is out of range [0, " +
                              std::to_string(out_count) + ") of the output plane");
}

// Fills `winner` (planes × out_count) with 1 + the last j writing each slot (0: none); throws
// std::invalid_argument, before anything reads the winners, when an index is out of range.
void claim_slots(const UnpoolParams& p, const int64_t* idx, unsigned long long* winner) {
  fill_bytes(winner, 0, p.planes * p.out_count * int64_t(sizeof(unsigned long long)));
  const int64_t total = p.planes * p.in_count;
  ErrorFlag bad;
  unpool_claim_kernel<<<blocks_for(total), kThreads>>>(total, p.in_count, p.out_count, idx,
                                                       winner, bad.ptr());
  CNNFAST_CUDA_CHECK_LAUNCH("unpool_claim_kernel");
  int64_t v = 0;
  if (bad.raised(&v)) throw_bad_index(v, p.out_count);
}

// The host run of the same element programs (emulate:: test hooks).
std::vector<unsigned long long> claim_on_host(const UnpoolParams& p, const int64_t* idx) {
  std::vector<unsigned long long> winner(size_t(p.planes * p.out_count), 0ull);
  long long flag[2] = {0, 0};
  for (int64_t j = 0; j < p.planes * p.in_count; ++j)
    claim_one(j, p.in_count, p.out_count, idx, winner.data(), flag);
  if (flag[0]) throw_bad_index(flag[1], p.out_count);
  return winner;
}

}  // namespace

void max_unpool_forward(const UnpoolParams& p, float* y, const float* x, const int64_t* idx,
                        const PoolParams* windows, bool from_pool) {
  fast::Geo g;
  if (fast_geo(p, windows, &g)) {
    const int64_t m = p.planes * p.out_count;
    const WindowCheck outside(from_pool);
    const int64_t n = p.planes * p.in_count;  // one thread per window
    if (fast::tiles(g)) {
      unpool_forward_tiled_kernel<<<blocks_for(n), kThreads>>>(g, int(n), y, x, idx,
                                                               outside.ptr());
      CNNFAST_CUDA_CHECK_LAUNCH("unpool_forward_tiled_kernel");
    } else if (!with_cell_reach(g, [&](auto M) {
                 unpool_forward_cell2d_kernel<decltype(M)::value>
                     <<<blocks_for(n), kThreads>>>(g, int(n), y, x, idx, outside.ptr());
                 CNNFAST_CUDA_CHECK_LAUNCH("unpool_forward_cell2d_kernel");
               })) {
      fill_bytes(y, 0, m * int64_t(sizeof(float)));
      unpool_forward_fast_kernel<<<blocks_for(n), kThreads>>>(g, int(n), y, x, idx,
                                                              outside.ptr());
      CNNFAST_CUDA_CHECK_LAUNCH("unpool_forward_fast_kernel");
    }
    if (!outside.missed()) return;  // else: the claim path (it rewrites all of y)
  }
  fill_bytes(y, 0, p.planes * p.out_count * int64_t(sizeof(float)));
  const int64_t total = p.planes * p.in_count;
  if (total == 0) return;
  Scratch<unsigned long long> winner(p.planes * p.out_count);
  claim_slots(p, idx, winner.get());
  unpool_forward_kernel<<<blocks_for(total), kThreads>>>(total, p.in_count, p.out_count, y, x,
                                                         idx, winner.get());
  CNNFAST_CUDA_CHECK_LAUNCH("unpool_forward_kernel");
}

void max_unpool_backward(const UnpoolParams& p, float* dx, const float* dy, const int64_t* idx,
                         const PoolParams* windows, bool from_pool) {
  const int64_t total = p.planes * p.in_count;
  if (total == 0) return;
  fast::Geo g;
  if (fast_geo(p, windows, &g)) {
    const WindowCheck outside(from_pool);
    unpool_backward_fast_kernel<<<blocks_for(total), kThreads>>>(g, int(total), dx, dy, idx,
                                                                 outside.ptr());
    CNNFAST_CUDA_CHECK_LAUNCH("unpool_backward_fast_kernel");
    if (!outside.missed()) return;
  }
  Scratch<unsigned long long> winner(p.planes * p.out_count);
  claim_slots(p, idx, winner.get());
  unpool_backward_kernel<<<blocks_for(total), kThreads>>>(total, p.in_count, p.out_count, dx, dy,
                                                          idx, winner.get());
  CNNFAST_CUDA_CHECK_LAUNCH("unpool_backward_kernel");
}

namespace emulate {
void max_unpool_forward(const UnpoolParams& p, float* y, const float* x, const int64_t* idx,
                        const PoolParams* windows) {
  fast::Geo g;
  set_last_pool_path("general");
  if (fast_geo(p, windows, &g)) {
    const int m = int(p.planes * p.out_count);
    std::fill(y, y + m, std::numeric_limits<float>::quiet_NaN());  // every element is written
    long long outside[2] = {0, 0};
    const int n = int(p.planes * p.in_count);
    if (fast::tiles(g)) {
      for (int o = 0; o < n; ++o) forward_tile(g, o, y, x, idx, outside);
    } else if (!with_cell_reach(g, [&](auto M) {
                 for (int o = 0; o < n; ++o)
                   forward_cell2d<decltype(M)::value>(g, o, y, x, idx, outside);
               })) {
      std::fill(y, y + m, 0.f);
      for (int j = 0; j < n; ++j) forward_fast(g, j, y, x, idx, outside);
    }
    set_last_pool_path(outside[0] ? "fallback" : "fast");
    if (!outside[0]) return;
  }
  std::fill(y, y + p.planes * p.out_count, 0.f);
  const std::vector<unsigned long long> winner = claim_on_host(p, idx);
  for (int64_t j = 0; j < p.planes * p.in_count; ++j)
    forward_one(j, p.in_count, p.out_count, y, x, idx, winner.data());
}
void max_unpool_backward(const UnpoolParams& p, float* dx, const float* dy, const int64_t* idx,
                         const PoolParams* windows) {
  fast::Geo g;
  set_last_pool_path("general");
  if (fast_geo(p, windows, &g)) {
    const int m = int(p.planes * p.in_count);
    std::fill(dx, dx + m, std::numeric_limits<float>::quiet_NaN());
    long long outside[2] = {0, 0};
    for (int j = 0; j < m; ++j) backward_fast(g, j, dx, dy, idx, outside);
    set_last_pool_path(outside[0] ? "fallback" : "fast");
    if (!outside[0]) return;
  }
  const std::vector<unsigned long long> winner = claim_on_host(p, idx);
  for (int64_t j = 0; j < p.planes * p.in_count; ++j)
    backward_one(j, p.in_count, p.out_count, dx, dy, idx, winner.data());
}
}  // namespace emulate

}  // namespace cnnfast::cuda
