// pool.cu — max / average pooling on CUDA, regular and adaptive, through pool.h's 3-D core
// (1-D/2-D are 3-D with singleton leading dims); one thread per output element. Windows come from
// window_of(), a __host__ __device__ copy of pool_windows() (pool_params.cpp) that
// pool_windows_agree() checks against it on the host. Max keeps the first maximum in raster
// order (a NaN wins and stays); the backward passes scatter with atomicAdd (shared taps add up).
// Regular windows with int-sized extents take pool_fast.cuh's 32-bit paths instead: the same
// forward bodies in int (2x2 stride-2 windows on aligned pairs), and backward passes without
// atomics, each dx element written once (max falls back here when a switch lies outside its
// window).
#include <algorithm>
#include <limits>
#include <string>

#include "cuda/pool_fast.cuh"
#include "cuda/runtime.cuh"

namespace cnnfast::cuda {
namespace {

// pool_windows(p, dim)[o], computed in place (same integer formulas).
__host__ __device__ inline PoolWindow window_of(const PoolParams& p, int dim, int64_t o) {
  const int64_t in = p.in[dim], out = p.out[dim];
  if (p.adaptive) {
    const int64_t start = o * in / out, end = ((o + 1) * in + out - 1) / out;
    return {start, end - start, 1, end - start};
  }
  const int64_t k = p.kernel[dim], dl = p.dil[dim];
  const int64_t start = o * p.stride[dim] - p.pad[dim];
  const int64_t t_lo = start < 0 ? (-start + dl - 1) / dl : 0;
  const int64_t last = in - 1 - start;  // largest offset from start still inside the input
  const int64_t t_hi = last < 0 ? 0 : (k < last / dl + 1 ? k : last / dl + 1);
  const int64_t end = start + k < in + p.pad[dim] ? start + k : in + p.pad[dim];
  return {start + t_lo * dl, t_hi - t_lo > 0 ? t_hi - t_lo : 0, dl, end - start};
}

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
  const PoolWindow a = window_of(p, 0, o.d), b = window_of(p, 1, o.h), c = window_of(p, 2, o.w);
  for (int64_t td = 0; td < a.count; ++td)
    for (int64_t th = 0; th < b.count; ++th)
      for (int64_t tw = 0; tw < c.count; ++tw)
        f(((a.first + td * a.step) * p.in[1] + b.first + th * b.step) * p.in[2] + c.first +
          tw * c.step);
}

CNNFAST_HD inline float avg_scale(const PoolParams& p, const AvgOptions& opt, const Out3& o) {
  const PoolWindow a = window_of(p, 0, o.d), b = window_of(p, 1, o.h), c = window_of(p, 2, o.w);
  if (opt.divisor_override > 0) return float(1.0 / double(opt.divisor_override));
  if (opt.count_include_pad) return float(1.0 / double(a.padded * b.padded * c.padded));
  return float(1.0 / double(a.count * b.count * c.count));
}

// ---- one output element each (the kernels run these in grid-stride loops) -----------------------
CNNFAST_HD inline void max_forward_one(const PoolParams& p, int64_t o, float* y, int64_t* idx,
                                       const float* x) {
  const Out3 at = decode(p, o);
  const float* xp = x + at.plane * (p.in[0] * p.in[1] * p.in[2]);
  const PoolWindow a = window_of(p, 0, at.d), b = window_of(p, 1, at.h), c = window_of(p, 2, at.w);
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

// ---- the 32-bit fast paths (pool_fast.cuh), one element each --------------------------------------
CNNFAST_HD inline float mul_rn(float a, float b) {  // never contracted into an FMA (CPU order)
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

CNNFAST_HD inline void max_forward_fast(const fast::Geo& g, int o, float* y, int64_t* idx,
                                        const float* x) {
  const fast::Pos at = fast::decode(o, g.div_out);
  const float* xp = x + int64_t(at.plane) * g.in_plane;
  const fast::Win a = fast::window(g, 0, at.d), b = fast::window(g, 1, at.h),
                  c = fast::window(g, 2, at.w);
  float best = -INFINITY;
  int arg = (a.first * g.in[1] + b.first) * g.in[2] + c.first;
  bool is_nan = false;  // the first NaN wins and stays
  for (int td = 0; td < a.count; ++td) {
    const int plane_row = (a.first + td * g.dl[0]) * g.in[1];
    for (int th = 0; th < b.count; ++th) {
      const int row = (plane_row + b.first + th * g.dl[1]) * g.in[2] + c.first;
      for (int tw = 0; tw < c.count; ++tw) {
        const int i = row + tw * g.dl[2];
        const float v = xp[i];
        if (!is_nan && (v > best || v != v)) {
          best = v;
          arg = i;
          is_nan = v != v;
        }
      }
    }
  }
  y[o] = best;
  if (idx) idx[o] = arg;
}

// 2×2 windows at stride 2 tiling a 2-D plane of even width (the most common pooling): the two
// rows of output o's window as aligned pairs, compared in raster order with the same NaN and tie
// rule as max_forward_fast.
inline bool tiled_2x2(const fast::Geo& g) {
  return g.in[0] == 1 && g.k[0] == 1 && g.s[0] == 1 && g.k[1] == 2 && g.k[2] == 2 &&
         g.s[1] == 2 && g.s[2] == 2 && g.pad[1] == 0 && g.pad[2] == 0 && g.dl[1] == 1 &&
         g.dl[2] == 1 && g.in[2] % 2 == 0 && 2 * g.out[1] <= g.in[1] && 2 * g.out[2] <= g.in[2];
}

CNNFAST_HD inline void max_forward_2x2(const fast::Geo& g, int o, float* y, int64_t* idx,
                                       const float* x) {
  const int q = g.div_out[2].div(o), ow = o - q * g.out[2];
  const int plane = g.div_out[1].div(q), oh = q - plane * g.out[1];
  const int W = g.in[2], i0 = 2 * oh * W + 2 * ow;
  const float* xp = x + int64_t(plane) * g.in_plane + i0;
  float v[4];
#ifdef __CUDA_ARCH__
  const float2 a = *reinterpret_cast<const float2*>(xp), b = *reinterpret_cast<const float2*>(xp + W);
  v[0] = a.x, v[1] = a.y, v[2] = b.x, v[3] = b.y;
#else
  v[0] = xp[0], v[1] = xp[1], v[2] = xp[W], v[3] = xp[W + 1];
#endif
  const int at[4] = {i0, i0 + 1, i0 + W, i0 + W + 1};
  float best = -INFINITY;
  int arg = i0;
  bool is_nan = false;
CNNFAST_UNROLL
  for (int t = 0; t < 4; ++t)
    if (!is_nan && (v[t] > best || v[t] != v[t])) {
      best = v[t];
      arg = at[t];
      is_nan = v[t] != v[t];
    }
  y[o] = best;
  if (idx) idx[o] = arg;
}

// 2-D windows of at most 3×3 taps, dilation 1 (3×3 stride-2 max pooling, 3×3 average pooling):
// the window's rows [hs, he) and columns [ws, we) clamped to the plane, its padded extent, and
// fully unrolled masked loops, so all nine loads are in flight at once.
CNNFAST_HD inline bool small_2d(const fast::Geo& g) {
  return g.in[0] == 1 && g.k[0] == 1 && g.s[0] == 1 && g.k[1] <= 3 && g.k[2] <= 3 &&
         g.dl[1] == 1 && g.dl[2] == 1;
}

struct Window2d {
  int plane, hs, he, ws, we, padded;
};
CNNFAST_HD inline Window2d window_2d(const fast::Geo& g, int o) {
  const int q = g.div_out[2].div(o), ow = o - q * g.out[2];
  const int plane = g.div_out[1].div(q), oh = q - plane * g.out[1];
  const int h0 = oh * g.s[1] - g.pad[1], w0 = ow * g.s[2] - g.pad[2];
  const int ph = fast::imin(h0 + g.k[1], g.in[1] + g.pad[1]) - h0;  // window() 's padded length
  const int pw = fast::imin(w0 + g.k[2], g.in[2] + g.pad[2]) - w0;
  return {plane, fast::imax(h0, 0), fast::imin(h0 + g.k[1], g.in[1]), fast::imax(w0, 0),
          fast::imin(w0 + g.k[2], g.in[2]), ph * pw};
}

CNNFAST_HD inline void max_forward_small(const fast::Geo& g, int o, float* y, int64_t* idx,
                                         const float* x) {
  const Window2d w = window_2d(g, o);
  const int W = g.in[2];
  const float* xp = x + int64_t(w.plane) * g.in_plane;
  float v[9];
CNNFAST_UNROLL
  for (int t = 0; t < 9; ++t) {
    const int h = w.hs + t / 3, c = w.ws + t % 3;
    v[t] = (h < w.he && c < w.we) ? xp[h * W + c] : -INFINITY;
  }
  float best = -INFINITY;
  int arg = w.hs * W + w.ws;
  bool is_nan = false;
CNNFAST_UNROLL
  for (int t = 0; t < 9; ++t) {
    const int h = w.hs + t / 3, c = w.ws + t % 3;
    if (h < w.he && c < w.we && !is_nan && (v[t] > best || v[t] != v[t])) {
      best = v[t];
      arg = h * W + c;
      is_nan = v[t] != v[t];
    }
  }
  y[o] = best;
  if (idx) idx[o] = arg;
}

CNNFAST_HD inline float avg_scale_fast(const AvgOptions& opt, int64_t padded, int64_t count) {
  if (opt.divisor_override > 0) return fast::recip(opt.divisor_override);
  return fast::recip(opt.count_include_pad ? padded : count);
}

CNNFAST_HD inline void avg_forward_fast(const fast::Geo& g, const AvgOptions& opt, int o,
                                        float* y, const float* x) {
  const fast::Pos at = fast::decode(o, g.div_out);
  const float* xp = x + int64_t(at.plane) * g.in_plane;
  const fast::Win a = fast::window(g, 0, at.d), b = fast::window(g, 1, at.h),
                  c = fast::window(g, 2, at.w);
  float sum = 0.f;
  for (int td = 0; td < a.count; ++td)
    for (int th = 0; th < b.count; ++th) {
      const float* row = xp + ((a.first + td) * g.in[1] + b.first + th) * g.in[2] + c.first;
      for (int tw = 0; tw < c.count; ++tw) sum += row[tw];
    }
  y[o] = sum * avg_scale_fast(opt, int64_t(a.padded) * b.padded * c.padded,
                              int64_t(a.count) * b.count * c.count);
}

CNNFAST_HD inline void avg_forward_small(const fast::Geo& g, const AvgOptions& opt, int o,
                                         float* y, const float* x) {
  const Window2d w = window_2d(g, o);
  const int W = g.in[2];
  const float* xp = x + int64_t(w.plane) * g.in_plane;
  float v[9];
CNNFAST_UNROLL
  for (int t = 0; t < 9; ++t) {
    const int h = w.hs + t / 3, c = w.ws + t % 3;
    v[t] = (h < w.he && c < w.we) ? xp[h * W + c] : 0.f;
  }
  float sum = 0.f;  // raster order, as avg_forward_fast
CNNFAST_UNROLL
  for (int t = 0; t < 9; ++t)
    if (w.hs + t / 3 < w.he && w.ws + t % 3 < w.we) sum += v[t];
  const int count = fast::imax(w.he - w.hs, 0) * fast::imax(w.we - w.ws, 0);
  y[o] = sum * avg_scale_fast(opt, w.padded, count);
}

// dx[e] = Σ, in raster order of the outputs whose window holds e, of dy[o] * scale(o).
CNNFAST_HD inline void avg_backward_fast(const fast::Geo& g, const AvgOptions& opt, int e,
                                         float* dx, const float* dy) {
  const fast::Pos p = fast::decode(e, g.div_in);
  int lo[3], hi[3];
  fast::cover(g, 0, p.d, &lo[0], &hi[0]);
  fast::cover(g, 1, p.h, &lo[1], &hi[1]);
  fast::cover(g, 2, p.w, &lo[2], &hi[2]);
  const float* dyp = dy + int64_t(p.plane) * g.out_plane;
  float s = 0.f, scale = 0.f;
  int64_t scale_of = -1;  // the divisor `scale` is for: one division per distinct window size
  for (int od = lo[0]; od <= hi[0]; ++od) {
    const fast::Win a = fast::window(g, 0, od);
    for (int oh = lo[1]; oh <= hi[1]; ++oh) {
      const fast::Win b = fast::window(g, 1, oh);
      const int row = (od * g.out[1] + oh) * g.out[2];
      for (int ow = lo[2]; ow <= hi[2]; ++ow) {
        const fast::Win c = fast::window(g, 2, ow);
        const int64_t n = opt.divisor_override > 0 ? opt.divisor_override
                          : opt.count_include_pad  ? int64_t(a.padded) * b.padded * c.padded
                                                   : int64_t(a.count) * b.count * c.count;
        if (n != scale_of) {
          scale_of = n;
          scale = fast::recip(n);
        }
        s += mul_rn(dyp[row + ow], scale);
      }
    }
  }
  dx[e] = s;
}

// dx[e] = Σ, in raster order, of dy[o] over the covering outputs whose switch is e.
// Window o's share of the max backward (dx zeroed before): the first window (in raster order)
// whose switch is v writes dx[v] = the dy of every window with that switch, summed in raster
// order — the CPU's scatter order, so the sums agree bit for bit.
CNNFAST_HD inline void max_backward_window(const fast::Geo& g, int o, float* dx, const float* dy,
                                           const int64_t* idx, long long* outside) {
  fast::Pos at;
  int64_t v;
  if (!fast::own_switch(g, o, idx, outside, &at, &v)) return;
  float sum = 0.f;
  bool first = true;
  fast::covering_windows(g, at.plane, v, [&](int o2) {
    if (idx[o2] != v) return true;
    if (o2 < o) {
      first = false;  // an earlier window writes the sum
      return false;
    }
    sum += dy[o2];
    return true;
  });
  if (first) dx[int64_t(at.plane) * g.in_plane + v] = sum;
}

// Window o of tiling windows writes its dx block: dy[o] at the switch, 0 elsewhere.
CNNFAST_HD inline void max_backward_tile(const fast::Geo& g, int o, float* dx, const float* dy,
                                         const int64_t* idx, long long* outside) {
  const float v = dy[o];
  fast::tile_block(g, o, idx, outside, [&](int e, bool hit) { dx[e] = hit ? v : 0.f; });
}

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

bool pool_windows_agree(const PoolParams& p) {
  for (int d = 0; d < 3; ++d) {
    const std::vector<PoolWindow> want = pool_windows(p, d);
    for (int64_t o = 0; o < p.out[d]; ++o) {
      const PoolWindow got = window_of(p, d, o), w = want[size_t(o)];
      if (got.first != w.first || got.count != w.count || got.step != w.step ||
          got.padded != w.padded)
        return false;
    }
  }
  return true;
}

void max_pool_forward(const PoolParams& p, float* y, int64_t* idx, const float* x) {
  const int64_t n = outputs(p);
  if (n == 0) return;
  fast::Geo g;
  if (fast::geo_of(p, false, &g) && tiled_2x2(g)) {
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

void max_pool_backward(const PoolParams& p, float* dx, const float* dy, const int64_t* idx) {
  const int64_t n = outputs(p), m = p.planes() * p.in_plane();
  fast::Geo g;
  if (n > 0 && fast::geo_of(p, true, &g) && fast::windows_nonempty(g)) {
    ErrorFlag outside;
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
    int64_t v = 0;
    if (!outside.raised(&v)) return;  // else: a switch off its window, the scatter below
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
    const bool two = tiled_2x2(g);
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
