// pool_fast_bodies.cuh — the element / window bodies of pool.cu's 32-bit fast paths
// (pool_fast.cuh's Geo): max and average forward (general, 2×2 stride 2 on aligned pairs, 2-D
// windows of at most 3×3), average backward (gather), max backward (tiling windows: one block
// writer each; overlapping: window-centric on a zeroed dx). __host__ __device__ so that the
// kernels and cuda::emulate:: run the same code. Included by pool.cu only.
#pragma once
#include <cmath>
#include <cstdint>

#include "cnnfast/pool.h"
#include "cuda/pool_fast.cuh"

namespace cnnfast::cuda {
namespace pool_bodies {

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
inline bool tiled_2x2(const fast::Geo& g, const float* x) {
  if (reinterpret_cast<uintptr_t>(x) % 8 != 0) return false;  // the pairs are float2 loads
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

}  // namespace pool_bodies
}  // namespace cnnfast::cuda
