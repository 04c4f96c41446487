// pool.cu — max / average pooling on CUDA, regular and adaptive, through pool.h's 3-D core
// (1-D/2-D are 3-D with singleton leading dims); one thread per output element. Windows come from
// pool.h's pool_window(), the host's own formula compiled for the device. Max keeps the first
// maximum in raster order (a NaN wins and stays); the backward passes scatter with atomicAdd
// (shared taps add up).
// Regular windows with int-sized extents take pool_fast.cuh's 32-bit paths instead: the same
// forward bodies in int (2x2 stride-2 windows on aligned pairs), and backward passes without
// atomics, each dx element written once (max falls back here when a switch lies outside its
// window).
#include <algorithm>
#include <limits>
#include <string>

#include "cuda/pool_fast.cuh"
#include "cuda/pool_fast_bodies.cuh"
#include "cuda/runtime.cuh"

namespace cnnfast::cuda {
namespace {

struct Out3 {  // output element o as (plane, od, oh, ow)
  int64_t plane, d, h, w;
};
CNNFAST_HD inline Out3 decode(const PoolParams& p, int64_t o) {
  Out3 r;
  r.w = o % p.out[2];
  o /= p.out[2];
  r.h = o % p.out[1];
  o /= p.out[1];
  r.d = o % p.out[0];
  r.plane = o / p.out[0];
  return r;
}

// Calls f(flat index within the input plane) for every tap of output o's window, raster order.
template <class F>
CNNFAST_HD inline void for_each_tap(const PoolParams& p, const Out3& o, F&& f) {
  const PoolWindow a = pool_window(p, 0, o.d), b = pool_window(p, 1, o.h),
                   c = pool_window(p, 2, o.w);
  for (int64_t td = 0; td < a.count; ++td)
    for (int64_t th = 0; th < b.count; ++th)
      for (int64_t tw = 0; tw < c.count; ++tw)
        f(((a.first + td * a.step) * p.in[1] + b.first + th * b.step) * p.in[2] + c.first +
          tw * c.step);
}

CNNFAST_HD inline float avg_scale(const PoolParams& p, const AvgOptions& opt, const Out3& o) {
  const PoolWindow a = pool_window(p, 0, o.d), b = pool_window(p, 1, o.h),
                   c = pool_window(p, 2, o.w);
  if (opt.divisor_override > 0) return float(1.0 / double(opt.divisor_override));
  // products in double: a kernel of 2^21 per dim would overflow int64 (exact below 2^53)
  if (opt.count_include_pad)
    return float(1.0 / (double(a.padded) * double(b.padded) * double(c.padded)));
  return float(1.0 / (double(a.count) * double(b.count) * double(c.count)));
}

// ---- one output element each (the kernels run these in grid-stride loops) -----------------------
CNNFAST_HD inline void max_forward_one(const PoolParams& p, int64_t o, float* y, int64_t* idx,
                                       const float* x) {
  const Out3 at = decode(p, o);
  const float* xp = x + at.plane * (p.in[0] * p.in[1] * p.in[2]);
  const PoolWindow a = pool_window(p, 0, at.d), b = pool_window(p, 1, at.h),
                   c = pool_window(p, 2, at.w);
  float best = -INFINITY;
  int64_t arg = (a.first * p.in[1] + b.first) * p.in[2] + c.first;
  bool is_nan = false;  // the first NaN wins and stays
  for_each_tap(p, at, [&](int64_t i) {
    const float v = xp[i];
    if (!is_nan && (v > best || v != v)) {
      best = v;
      arg = i;
      is_nan = v != v;
    }
  });
  y[o] = best;
  if (idx) idx[o] = arg;
}

CNNFAST_HD inline void max_backward_one(const PoolParams& p, int64_t o, float* dx,
                                        const float* dy, const int64_t* idx, long long* flag) {
  const int64_t in_plane = p.in[0] * p.in[1] * p.in[2], out_plane = p.out[0] * p.out[1] * p.out[2];
  const int64_t i = idx[o];
  if (i < 0 || i >= in_plane) {
    report_error(flag, i);
    return;
  }
  atomic_add(&dx[(o / out_plane) * in_plane + i], dy[o]);
}

CNNFAST_HD inline void avg_forward_one(const PoolParams& p, const AvgOptions& opt, int64_t o,
                                       float* y, const float* x) {
  const Out3 at = decode(p, o);
  const float* xp = x + at.plane * (p.in[0] * p.in[1] * p.in[2]);
  float sum = 0.f;
  for_each_tap(p, at, [&](int64_t i) { sum += xp[i]; });
  y[o] = sum * avg_scale(p, opt, at);
}

CNNFAST_HD inline void avg_backward_one(const PoolParams& p, const AvgOptions& opt, int64_t o,
                                        float* dx, const float* dy) {
  const Out3 at = decode(p, o);
  float* dxp = dx + at.plane * (p.in[0] * p.in[1] * p.in[2]);
  const float g = dy[o] * avg_scale(p, opt, at);
  for_each_tap(p, at, [&](int64_t i) { atomic_add(&dxp[i], g); });
}

__global__ void max_pool_forward_kernel(PoolParams p, int64_t total, float* y, int64_t* idx,
                                        const float* x) {
  CNNFAST_GRID_STRIDE(o, total) { max_forward_one(p, o, y, idx, x); }
}

__global__ void max_pool_backward_kernel(PoolParams p, int64_t total, float* dx, const float* dy,
                                         const int64_t* idx, long long* flag) {
  CNNFAST_GRID_STRIDE(o, total) { max_backward_one(p, o, dx, dy, idx, flag); }
}

__global__ void avg_pool_forward_kernel(PoolParams p, AvgOptions opt, int64_t total, float* y,
                                        const float* x) {
  CNNFAST_GRID_STRIDE(o, total) { avg_forward_one(p, opt, o, y, x); }
}

__global__ void avg_pool_backward_kernel(PoolParams p, AvgOptions opt, int64_t total, float* dx,
                                         const float* dy) {
  CNNFAST_GRID_STRIDE(o, total) { avg_backward_one(p, opt, o, dx, dy); }
}

// ---- the 32-bit fast paths: bodies in pool_fast_bodies.cuh ----------------------------------------
using namespace pool_bodies;  // NOLINT: this file's own bodies, split out for size

__global__ void max_pool_backward_tiled_kernel(fast::Geo g, int total, float* dx,
                                               const float* dy, const int64_t* idx,
                                               long long* outside) {
  CNNFAST_GRID_STRIDE_INT(o, total) { max_backward_tile(g, o, dx, dy, idx, outside); }
}

__global__ void max_pool_forward_2x2_kernel(fast::Geo g, int total, float* y, int64_t* idx,
                                            const float* x) {
  CNNFAST_GRID_STRIDE_INT(o, total) { max_forward_2x2(g, o, y, idx, x); }
}

__global__ void max_pool_forward_fast_kernel(fast::Geo g, int total, float* y, int64_t* idx,
                                             const float* x) {
  if (small_2d(g)) {
    CNNFAST_GRID_STRIDE_INT(o, total) { max_forward_small(g, o, y, idx, x); }
  } else {
    CNNFAST_GRID_STRIDE_INT(o, total) { max_forward_fast(g, o, y, idx, x); }
  }
}

__global__ void avg_pool_forward_fast_kernel(fast::Geo g, AvgOptions opt, int total, float* y,
                                             const float* x) {
  if (small_2d(g)) {
    CNNFAST_GRID_STRIDE_INT(o, total) { avg_forward_small(g, opt, o, y, x); }
  } else {
    CNNFAST_GRID_STRIDE_INT(o, total) { avg_forward_fast(g, opt, o, y, x); }
  }
}

__global__ void avg_pool_backward_fast_kernel(fast::Geo g, AvgOptions opt, int total, float* dx,
                                              const float* dy) {
  CNNFAST_GRID_STRIDE_INT(e, total) { avg_backward_fast(g, opt, e, dx, dy); }
}

__global__ void max_pool_backward_fast_kernel(fast::Geo g, int total, float* dx, const float* dy,
                                              const int64_t* idx, long long* outside) {
  CNNFAST_GRID_STRIDE_INT(o, total) { max_backward_window(g, o, dx, dy, idx, outside); }
}

void throw_bad_index(int64_t v, int64_t in_plane) {
  throw std::invalid_argument("indices: value " + std::to_string(v) + " is out of range [0, " +
                              std::to_string(in_plane) + ") of the input plane");
}

int64_t outputs(const PoolParams& p) { return p.planes() * p.out_plane(); }

}  // namespace

void max_pool_forward(const PoolParams& p, float* y, int64_t* idx, const float* x) {
  const int64_t n = outputs(p);
  if (n == 0) return;
  fast::Geo g;
  if (fast::geo_of(p, false, &g) && tiled_2x2(g, x)) {
    max_pool_forward_2x2_kernel<<<blocks_for(n), kThreads>>>(g, int(n), y, idx, x);
    CNNFAST_CUDA_CHECK_LAUNCH("max_pool_forward_2x2_kernel");
    return;
  }
  if (fast::geo_of(p, false, &g)) {
    max_pool_forward_fast_kernel<<<blocks_for(n), kThreads>>>(g, int(n), y, idx, x);
    CNNFAST_CUDA_CHECK_LAUNCH("max_pool_forward_fast_kernel");
    return;
  }
  max_pool_forward_kernel<<<blocks_for(n), kThreads>>>(p, n, y, idx, x);
  CNNFAST_CUDA_CHECK_LAUNCH("max_pool_forward_kernel");
}

void max_pool_backward(const PoolParams& p, float* dx, const float* dy, const int64_t* idx,
                       bool from_pool) {
  const int64_t n = outputs(p), m = p.planes() * p.in_plane();
  fast::Geo g;
  if (n > 0 && fast::geo_of(p, true, &g) && fast::windows_nonempty(g)) {
    const WindowCheck outside(from_pool);
    if (fast::tiles(g)) {
      max_pool_backward_tiled_kernel<<<blocks_for(n), kThreads>>>(g, int(n), dx, dy, idx,
                                                                  outside.ptr());
      CNNFAST_CUDA_CHECK_LAUNCH("max_pool_backward_tiled_kernel");
    } else {
      fill_bytes(dx, 0, m * int64_t(sizeof(float)));
      max_pool_backward_fast_kernel<<<blocks_for(n), kThreads>>>(g, int(n), dx, dy, idx,
                                                                 outside.ptr());
      CNNFAST_CUDA_CHECK_LAUNCH("max_pool_backward_fast_kernel");
    }
    if (!outside.missed()) return;  // else: a switch off its window, the scatter below
  }
  fill_bytes(dx, 0, m * int64_t(sizeof(float)));
  if (n == 0) return;
  ErrorFlag bad;
  max_pool_backward_kernel<<<blocks_for(n), kThreads>>>(p, n, dx, dy, idx, bad.ptr());
  CNNFAST_CUDA_CHECK_LAUNCH("max_pool_backward_kernel");
  int64_t v = 0;
  if (bad.raised(&v)) throw_bad_index(v, p.in_plane());
}

void avg_pool_forward(const PoolParams& p, const AvgOptions& o, float* y, const float* x) {
  const int64_t n = outputs(p);
  if (n == 0) return;
  fast::Geo g;
  if (fast::geo_of(p, true, &g)) {
    avg_pool_forward_fast_kernel<<<blocks_for(n), kThreads>>>(g, o, int(n), y, x);
    CNNFAST_CUDA_CHECK_LAUNCH("avg_pool_forward_fast_kernel");
    return;
  }
  avg_pool_forward_kernel<<<blocks_for(n), kThreads>>>(p, o, n, y, x);
  CNNFAST_CUDA_CHECK_LAUNCH("avg_pool_forward_kernel");
}

void avg_pool_backward(const PoolParams& p, const AvgOptions& o, float* dx, const float* dy) {
  const int64_t n = outputs(p), m = p.planes() * p.in_plane();
  fast::Geo g;
  if (n > 0 && fast::geo_of(p, true, &g)) {
    avg_pool_backward_fast_kernel<<<blocks_for(m), kThreads>>>(g, o, int(m), dx, dy);
    CNNFAST_CUDA_CHECK_LAUNCH("avg_pool_backward_fast_kernel");
    return;
  }
  fill_bytes(dx, 0, m * int64_t(sizeof(float)));
  if (n == 0) return;
  avg_pool_backward_kernel<<<blocks_for(n), kThreads>>>(p, o, n, dx, dy);
  CNNFAST_CUDA_CHECK_LAUNCH("avg_pool_backward_kernel");
}

namespace emulate {
namespace {
thread_local const char* last_path = "";
void poison(float* a, int64_t n) { std::fill(a, a + n, std::numeric_limits<float>::quiet_NaN()); }
}  // namespace
const char* last_pool_path() { return last_path; }
void set_last_pool_path(const char* path) { last_path = path; }

void max_pool_forward(const PoolParams& p, float* y, int64_t* idx, const float* x) {
  fast::Geo g;
  if (fast::geo_of(p, false, &g)) {
    last_path = "fast";
    const bool two = tiled_2x2(g, x);
    for (int o = 0; o < int(outputs(p)); ++o)
      two ? max_forward_2x2(g, o, y, idx, x)
          : small_2d(g) ? max_forward_small(g, o, y, idx, x) : max_forward_fast(g, o, y, idx, x);
    return;
  }
  last_path = "general";
  for (int64_t o = 0; o < outputs(p); ++o) max_forward_one(p, o, y, idx, x);
}
void max_pool_backward(const PoolParams& p, float* dx, const float* dy, const int64_t* idx) {
  const int64_t m = p.planes() * p.in_plane();
  fast::Geo g;
  last_path = "general";
  if (outputs(p) > 0 && fast::geo_of(p, true, &g) && fast::windows_nonempty(g)) {
    poison(dx, m);  // the fast paths must write every element
    long long outside[2] = {0, 0};
    if (fast::tiles(g)) {
      for (int o = 0; o < int(outputs(p)); ++o) max_backward_tile(g, o, dx, dy, idx, outside);
    } else {
      std::fill(dx, dx + m, 0.f);
      for (int o = 0; o < int(outputs(p)); ++o) max_backward_window(g, o, dx, dy, idx, outside);
    }
    last_path = outside[0] ? "fallback" : "fast";
    if (!outside[0]) return;
  }
  std::fill(dx, dx + m, 0.f);
  long long flag[2] = {0, 0};
  for (int64_t o = 0; o < outputs(p); ++o) max_backward_one(p, o, dx, dy, idx, flag);
  if (flag[0]) throw_bad_index(flag[1], p.in_plane());
}
void avg_pool_forward(const PoolParams& p, const AvgOptions& opt, float* y, const float* x) {
  fast::Geo g;
  if (fast::geo_of(p, true, &g)) {
    last_path = "fast";
    for (int o = 0; o < int(outputs(p)); ++o)
      small_2d(g) ? avg_forward_small(g, opt, o, y, x) : avg_forward_fast(g, opt, o, y, x);
    return;
  }
  last_path = "general";
  for (int64_t o = 0; o < outputs(p); ++o) avg_forward_one(p, opt, o, y, x);
}
void avg_pool_backward(const PoolParams& p, const AvgOptions& opt, float* dx, const float* dy) {
  const int64_t m = p.planes() * p.in_plane();
  fast::Geo g;
  if (outputs(p) > 0 && fast::geo_of(p, true, &g)) {
    last_path = "fast";
    poison(dx, m);
    for (int e = 0; e < int(m); ++e) avg_backward_fast(g, opt, e, dx, dy);
    return;
  }
  last_path = "general";
  std::fill(dx, dx + m, 0.f);
  for (int64_t o = 0; o < outputs(p); ++o) avg_backward_one(p, opt, o, dx, dy);
}
}  // namespace emulate

}  // namespace cnnfast::cuda
