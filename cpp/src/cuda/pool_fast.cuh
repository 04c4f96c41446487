// pool_fast.cuh — the 32-bit fast paths shared by pool.cu and unpool.cu: regular (non-adaptive)
// windows with every size below 2^31, one thread per element, no int64 division. Forward: one
// thread per output computes its window in place. The scatters without atomics, each result
// written once in the CPU's order: windows that tile the plane (kernel == stride, no padding):
// one thread per window writes its whole block (tile_block); overlapping windows (max backward,
// unpooling): one thread per window, and of the windows sharing a switch the first (backward: the
// raster-order sum of their dy) or the last (unpooling: its x) writes (own_switch,
// covering_windows); avg backward: one thread per big-plane element gathers its windows. Exact
// only when every switch lies inside its own window: each window checks its own and raises the
// flag otherwise, and the host then reruns the general int64 path (which also reports
// out-of-range indices) — unless max_pool made the switches, when the flag is runtime.cuh's
// deferred one. Bodies are CNNFAST_HD for emulate::.
#pragma once
#include "cuda/runtime.cuh"

// CNNFAST_GRID_STRIDE in int (n < 2^30: geo_of's limit, so i + the grid never overflows).
#define CNNFAST_GRID_STRIDE_INT(i, n) \
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += gridDim.x * blockDim.x)

namespace cnnfast::cuda::fast {

CNNFAST_HD inline int imin(int a, int b) { return a < b ? a : b; }
CNNFAST_HD inline int imax(int a, int b) { return a > b ? a : b; }

// n / d for 0 <= n < 2^31 by a multiply-high and a shift (PyTorch's IntDivider): the fast
// paths' index math divides by run-time extents and strides, which a plain `/` makes ~20
// instructions each.
struct FastDiv {
  unsigned d, m, shift;
  CNNFAST_HD int div(int n) const {
#ifdef __CUDA_ARCH__
    const unsigned t = __umulhi(unsigned(n), m);
#else
    const unsigned t = unsigned((uint64_t(unsigned(n)) * m) >> 32);
#endif
    return int((t + unsigned(n)) >> shift);
  }
};
inline FastDiv fast_div(int d) {  // 1 <= d < 2^31
  unsigned shift = 0;
  while ((uint64_t(1) << shift) < uint64_t(d)) ++shift;
  const uint64_t m = ((uint64_t(1) << 32) * ((uint64_t(1) << shift) - uint64_t(d))) / uint64_t(d) + 1;
  return {unsigned(d), unsigned(m), shift};
}

// PoolParams in int: in = the big (unpooled / input) plane, out = the pooled plane; dividers for
// the extents and strides.
struct Geo {
  int in[3], out[3], k[3], s[3], pad[3], dl[3];
  int in_plane, out_plane, planes;
  FastDiv div_in[3], div_out[3], div_s[3];
};

// Fills *g and returns true when p's windows are regular, every index fits an int (with margin)
// and, if dil1, the dilation is 1 everywhere (the gathers' window-cover formula assumes it).
inline bool geo_of(const PoolParams& p, bool dil1, Geo* g) {
  constexpr int64_t kMax = int64_t(1) << 30;
  if (p.adaptive || p.planes() <= 0 || p.in_plane() <= 0 || p.out_plane() <= 0) return false;
  if (p.planes() * p.in_plane() >= kMax || p.planes() * p.out_plane() >= kMax) return false;
  // window sizes whose product (avg's divisor, in int64) stays far from overflow
  if (double(p.kernel[0]) * double(p.kernel[1]) * double(p.kernel[2]) >= double(kMax) * kMax)
    return false;
  for (int d = 0; d < 3; ++d) {
    if (dil1 && p.dil[d] != 1) return false;
    if (p.in[d] + p.kernel[d] * p.dil[d] + p.stride[d] + 2 * p.pad[d] >= kMax) return false;
    g->in[d] = int(p.in[d]);
    g->out[d] = int(p.out[d]);
    g->k[d] = int(p.kernel[d]);
    g->s[d] = int(p.stride[d]);
    g->pad[d] = int(p.pad[d]);
    g->dl[d] = int(p.dil[d]);
    g->div_in[d] = fast_div(g->in[d]);
    g->div_out[d] = fast_div(g->out[d]);
    g->div_s[d] = fast_div(g->s[d]);
  }
  g->in_plane = int(p.in_plane());
  g->out_plane = int(p.out_plane());
  g->planes = int(p.planes());
  return true;
}

// pool_window() (pool.h) in int: taps first + t*dl for t < count; padded = length with padding.
struct Win {
  int first, count, padded;
};
CNNFAST_HD inline Win window(const Geo& g, int d, int o) {
  const int in = g.in[d], k = g.k[d], dl = g.dl[d];
  const int start = o * g.s[d] - g.pad[d];
  const int t_lo = start < 0 ? (dl == 1 ? -start : (-start + dl - 1) / dl) : 0;
  const int last = in - 1 - start;
  const int t_hi = last < 0 ? 0 : imin(k, (dl == 1 ? last : last / dl) + 1);
  const int end = imin(start + k, in + g.pad[d]);
  return {start + t_lo * dl, imax(t_hi - t_lo, 0), end - start};
}

// float(1.0 / double(n)) as the general path computes it: for 0 < n < 2^24 the correctly rounded
// float quotient is the same number (a double rounding could only differ at an exact midpoint).
CNNFAST_HD inline float recip(int64_t n) {
  return n < (int64_t(1) << 24) ? 1.0f / float(n) : float(1.0 / double(n));
}

// Flat element e of a (planes, D, H, W) array as (plane, d, h, w); 2-D / 1-D skip a division.
struct Pos {
  int plane, d, h, w;
};
CNNFAST_HD inline Pos decode(int e, const FastDiv dims[3]) {
  Pos r;
  int q = dims[2].div(e);
  r.w = e - q * int(dims[2].d);
  e = q;
  if (dims[1].d == 1) {
    r.h = 0;
  } else {
    q = dims[1].div(e);
    r.h = e - q * int(dims[1].d);
    e = q;
  }
  if (dims[0].d == 1) {
    r.d = 0;
  } else {
    q = dims[0].div(e);
    r.d = e - q * int(dims[0].d);
    e = q;
  }
  r.plane = e;
  return r;
}

// The pooled indices o along dim d whose window span [o*s - pad, o*s - pad + k) holds position
// i (dilation 1): o in [lo, hi]; empty when lo > hi. A 1/1/0 dim (2-D's depth) maps o = i.
CNNFAST_HD inline void cover(const Geo& g, int d, int i, int* lo, int* hi) {
  if (g.k[d] == 1 && g.s[d] == 1 && g.pad[d] == 0) {
    *lo = *hi = i;
    return;
  }
  const int n = i + g.pad[d] - g.k[d] + 1;
  *lo = n <= 0 ? 0 : g.div_s[d].div(n + g.s[d] - 1);
  *hi = imin(g.div_s[d].div(i + g.pad[d]), g.out[d] - 1);
}

// Whether switch v of window (od, oh, ow) lies on one of its taps (dilation 1).
CNNFAST_HD inline bool switch_inside(const Geo& g, int od, int oh, int ow, int64_t v) {
  if (v < 0 || v >= g.in_plane) return false;
  const Pos at = decode(int(v), g.div_in);  // at.plane == 0
  const Win a = window(g, 0, od), b = window(g, 1, oh), c = window(g, 2, ow);
  return at.d >= a.first && at.d < a.first + a.count && at.h >= b.first &&
         at.h < b.first + b.count && at.w >= c.first && at.w < c.first + c.count;
}

// Every window has at least one tap (then each is checked by the thread at its first tap).
inline bool windows_nonempty(const Geo& g) {
  for (int d = 0; d < 3; ++d)
    for (int o = 0; o < g.out[d]; ++o)
      if (window(g, d, o).count <= 0) return false;
  return true;
}

// Window o (flat pooled index incl. the plane) at position *at with switch *v: whether v lies
// on one of o's taps (else the flag is raised with v).
CNNFAST_HD inline bool own_switch(const Geo& g, int o, const int64_t* idx, long long* flag,
                                  Pos* at, int64_t* v) {
  *at = decode(o, g.div_out);
  *v = idx[o];
  if (switch_inside(g, at->d, at->h, at->w, *v)) return true;
  report_error(flag, *v);
  return false;
}

// The windows of plane `plane` whose span covers big-plane position v, in raster order: on(o)
// with o the flat pooled index; stops when on returns false.
template <class F>
CNNFAST_HD inline void covering_windows(const Geo& g, int plane, int64_t v, F&& on) {
  const Pos s = decode(int(v), g.div_in);  // s.plane == 0: v is in-plane
  int lo[3], hi[3];
  cover(g, 0, s.d, &lo[0], &hi[0]);
  cover(g, 1, s.h, &lo[1], &hi[1]);
  cover(g, 2, s.w, &lo[2], &hi[2]);
  const int base = plane * g.out_plane;
  for (int od = lo[0]; od <= hi[0]; ++od)
    for (int oh = lo[1]; oh <= hi[1]; ++oh)
      for (int ow = lo[2]; ow <= hi[2]; ++ow)
        if (!on(base + (od * g.out[1] + oh) * g.out[2] + ow)) return;
}

// Windows that tile the plane (kernel == stride, no padding, dilation 1): pooled index o owns
// the block [o·s, o·s + k) along each dim, the last block also the tail up to the input's end,
// so one thread per window writes every element of the big plane exactly once.
inline bool tiles(const Geo& g) {
  for (int d = 0; d < 3; ++d)
    if (g.k[d] != g.s[d] || g.pad[d] != 0) return false;
  return true;
}

// Window o's block (o: flat pooled index incl. the plane): put(big-plane flat index, hit) for
// each element, hit when the switch points at it. A switch off its window raises the flag.
template <class F>
CNNFAST_HD inline void tile_block(const Geo& g, int o, const int64_t* idx, long long* flag,
                                  F&& put) {
  const Pos at = decode(o, g.div_out);
  const int pos[3] = {at.d, at.h, at.w};
  int lo[3], end[3], hi[3];
  for (int d = 0; d < 3; ++d) {
    lo[d] = pos[d] * g.s[d];
    end[d] = imin(lo[d] + g.k[d], g.in[d]);              // the window
    hi[d] = pos[d] == g.out[d] - 1 ? g.in[d] : end[d];   // + the tail no window covers
  }
  const int64_t v = idx[o];
  bool inside = v >= 0 && v < g.in_plane;
  if (inside) {
    const Pos sv = decode(int(v), g.div_in);
    inside = sv.d >= lo[0] && sv.d < end[0] && sv.h >= lo[1] && sv.h < end[1] &&
             sv.w >= lo[2] && sv.w < end[2];
  }
  if (!inside) report_error(flag, v);
  const int base = at.plane * g.in_plane;
  for (int dd = lo[0]; dd < hi[0]; ++dd)
    for (int hh = lo[1]; hh < hi[1]; ++hh) {
      const int row = (dd * g.in[1] + hh) * g.in[2];
      for (int ww = lo[2]; ww < hi[2]; ++ww) put(base + row + ww, row + ww == v);
    }
}

}  // namespace cnnfast::cuda::fast
