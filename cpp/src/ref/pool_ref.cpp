// pool_ref.cpp — naive pooling: for output o along a dim the window is the taps
// o*stride - pad + t*dilation (t < kernel) inside [0, in), or [floor(o*in/out), ceil((o+1)*in/out))
// when adaptive; max keeps the first maximum (raster order), avg divides by the window count
// (clipped, padded, or divisor_override). Unpool: last writer wins. All loops sequential.
#include "ref/pool_ref.h"

#include <cmath>
#include <limits>
#include <string>

#include "cnnfast/checked.h"

namespace cnnfast::ref {
namespace {

struct Range {
  int64_t lo, hi, step;  // taps lo, lo+step, ... < hi (already clipped); padded = padded length
  int64_t padded;
};

Range window(const PoolParams& p, int d, int64_t o) {
  const int64_t in = p.in[d];
  if (p.adaptive) {
    const int64_t lo = o * in / p.out[d], hi = ((o + 1) * in + p.out[d] - 1) / p.out[d];
    return {lo, hi, 1, hi - lo};
  }
  int64_t lo = o * p.stride[d] - p.pad[d];
  const int64_t padded = std::min(lo + p.kernel[d], in + p.pad[d]) - lo;
  int64_t hi = lo + (p.kernel[d] - 1) * p.dil[d] + 1;
  if (lo < 0) lo += (-lo + p.dil[d] - 1) / p.dil[d] * p.dil[d];  // the first tap inside
  if (hi > in) hi = in;
  return {lo, hi, p.dil[d], padded};
}

// Calls f(plane, out_flat, window_d, window_h, window_w) for every output.
template <class F>
void for_each_output(const PoolParams& p, F&& f) {
  for (int64_t pl = 0; pl < p.planes(); ++pl)
    for (int64_t od = 0; od < p.out[0]; ++od)
      for (int64_t oh = 0; oh < p.out[1]; ++oh)
        for (int64_t ow = 0; ow < p.out[2]; ++ow)
          f(pl, (od * p.out[1] + oh) * p.out[2] + ow, window(p, 0, od), window(p, 1, oh),
            window(p, 2, ow));
}

int64_t count(const Range& r) { return r.hi > r.lo ? (r.hi - r.lo + r.step - 1) / r.step : 0; }

double avg_scale(const AvgOptions& o, const Range& a, const Range& b, const Range& c) {
  if (o.divisor_override > 0) return 1.0 / double(o.divisor_override);
  // products in double: a kernel of 2^21 per dim would overflow int64 (exact below 2^53)
  if (o.count_include_pad) return 1.0 / (double(a.padded) * double(b.padded) * double(c.padded));
  return 1.0 / (double(count(a)) * double(count(b)) * double(count(c)));
}

}  // namespace

template <class T>
void max_pool_forward(const PoolParams& p, T* y, int64_t* idx, const T* x) {
  const int64_t H = p.in[1], W = p.in[2];
  for_each_output(p, [&](int64_t pl, int64_t o, Range a, Range b, Range c) {
    const T* xp = x + pl * p.in_plane();
    T best = -std::numeric_limits<T>::infinity();
    int64_t arg = (a.lo * H + b.lo) * W + c.lo;
    for (int64_t d = a.lo; d < a.hi; d += a.step)
      for (int64_t h = b.lo; h < b.hi; h += b.step)
        for (int64_t w = c.lo; w < c.hi; w += c.step) {
          const int64_t i = (d * H + h) * W + w;
          if (xp[i] > best || std::isnan(xp[i])) {
            if (std::isnan(best)) continue;  // the first NaN stays
            best = xp[i];
            arg = i;
          }
        }
    y[pl * p.out_plane() + o] = best;
    if (idx) idx[pl * p.out_plane() + o] = arg;
  });
}

template <class T>
void max_pool_backward(const PoolParams& p, T* dx, const T* dy, const int64_t* idx) {
  for (int64_t i = 0; i < p.planes() * p.in_plane(); ++i) dx[i] = T(0);
  for (int64_t pl = 0; pl < p.planes(); ++pl)
    for (int64_t o = 0; o < p.out_plane(); ++o) {
      const int64_t i = idx[pl * p.out_plane() + o];
      if (i < 0 || i >= p.in_plane())
        arg_error("indices: value " + std::to_string(i) + " is out of range [0, " +
                  std::to_string(p.in_plane()) + ") of the input plane");
      dx[pl * p.in_plane() + i] += dy[pl * p.out_plane() + o];
    }
}

template <class T>
void avg_pool_forward(const PoolParams& p, const AvgOptions& opt, T* y, const T* x) {
  const int64_t H = p.in[1], W = p.in[2];
  for_each_output(p, [&](int64_t pl, int64_t o, Range a, Range b, Range c) {
    const T* xp = x + pl * p.in_plane();
    T sum = 0;
    for (int64_t d = a.lo; d < a.hi; d += a.step)
      for (int64_t h = b.lo; h < b.hi; h += b.step)
        for (int64_t w = c.lo; w < c.hi; w += c.step) sum += xp[(d * H + h) * W + w];
    y[pl * p.out_plane() + o] = sum * T(avg_scale(opt, a, b, c));
  });
}

template <class T>
void avg_pool_backward(const PoolParams& p, const AvgOptions& opt, T* dx, const T* dy) {
  const int64_t H = p.in[1], W = p.in[2];
  for (int64_t i = 0; i < p.planes() * p.in_plane(); ++i) dx[i] = T(0);
  for_each_output(p, [&](int64_t pl, int64_t o, Range a, Range b, Range c) {
    T* dxp = dx + pl * p.in_plane();
    const T g = dy[pl * p.out_plane() + o] * T(avg_scale(opt, a, b, c));
    for (int64_t d = a.lo; d < a.hi; d += a.step)
      for (int64_t h = b.lo; h < b.hi; h += b.step)
        for (int64_t w = c.lo; w < c.hi; w += c.step) dxp[(d * H + h) * W + w] += g;
  });
}

namespace {
void check_index(const UnpoolParams& p, int64_t i) {
  if (i < 0 || i >= p.out_count)
    arg_error("indices: value " + std::to_string(i) + " is out of range [0, " +
              std::to_string(p.out_count) + ") of the output plane");
}
}  // namespace

template <class T>
void max_unpool_forward(const UnpoolParams& p, T* y, const T* x, const int64_t* idx) {
  for (int64_t i = 0; i < p.planes * p.out_count; ++i) y[i] = T(0);
  for (int64_t pl = 0; pl < p.planes; ++pl)
    for (int64_t j = 0; j < p.in_count; ++j) {
      const int64_t i = idx[pl * p.in_count + j];
      check_index(p, i);
      y[pl * p.out_count + i] = x[pl * p.in_count + j];
    }
}

template <class T>
void max_unpool_backward(const UnpoolParams& p, T* dx, const T* dy, const int64_t* idx) {
  for (int64_t pl = 0; pl < p.planes; ++pl)
    for (int64_t j = 0; j < p.in_count; ++j) {
      const int64_t i = idx[pl * p.in_count + j];
      check_index(p, i);
      bool last = true;  // no later j' in this plane writes the same index
      for (int64_t k = j + 1; k < p.in_count; ++k)
        if (idx[pl * p.in_count + k] == i) last = false;
      dx[pl * p.in_count + j] = last ? dy[pl * p.out_count + i] : T(0);
    }
}

namespace {
// Calls f(plane, out_flat, in_flat, weight) for each of the 8 (d, h, w) corner taps per output.
template <class F>
void for_each_interp_tap(const InterpParams& p, F&& f) {
  const std::vector<InterpTap> td = interp_taps(p, 0), th = interp_taps(p, 1), tw = interp_taps(p, 2);
  const int64_t out_plane = p.out[0] * p.out[1] * p.out[2];
  const int64_t in_plane = p.in[0] * p.in[1] * p.in[2];
  for (int64_t pl = 0; pl < p.planes(); ++pl)
    for (int64_t od = 0; od < p.out[0]; ++od)
      for (int64_t oh = 0; oh < p.out[1]; ++oh)
        for (int64_t ow = 0; ow < p.out[2]; ++ow) {
          const int64_t o = pl * out_plane + (od * p.out[1] + oh) * p.out[2] + ow;
          const InterpTap a = td[od], b = th[oh], c = tw[ow];
          for (int i = 0; i < 8; ++i) {
            const int64_t d = (i & 4) ? a.i1 : a.i0, h = (i & 2) ? b.i1 : b.i0,
                          w = (i & 1) ? c.i1 : c.i0;
            const double wt = ((i & 4) ? a.lambda : 1 - a.lambda) *
                              ((i & 2) ? b.lambda : 1 - b.lambda) *
                              ((i & 1) ? c.lambda : 1 - c.lambda);
            f(o, pl * in_plane + (d * p.in[1] + h) * p.in[2] + w, wt);
          }
        }
}
}  // namespace

template <class T>
void interpolate_forward(const InterpParams& p, T* y, const T* x) {
  for (int64_t i = 0; i < p.planes() * p.out[0] * p.out[1] * p.out[2]; ++i) y[i] = T(0);
  for_each_interp_tap(p, [&](int64_t o, int64_t i, double wt) { y[o] += T(wt) * x[i]; });
}

template <class T>
void interpolate_backward(const InterpParams& p, T* dx, const T* dy) {
  for (int64_t i = 0; i < p.planes() * p.in[0] * p.in[1] * p.in[2]; ++i) dx[i] = T(0);
  for_each_interp_tap(p, [&](int64_t o, int64_t i, double wt) { dx[i] += T(wt) * dy[o]; });
}

#define CNNFAST_INSTANTIATE(T)                                                                 \
  template void max_pool_forward<T>(const PoolParams&, T*, int64_t*, const T*);                \
  template void max_pool_backward<T>(const PoolParams&, T*, const T*, const int64_t*);         \
  template void avg_pool_forward<T>(const PoolParams&, const AvgOptions&, T*, const T*);       \
  template void avg_pool_backward<T>(const PoolParams&, const AvgOptions&, T*, const T*);      \
  template void max_unpool_forward<T>(const UnpoolParams&, T*, const T*, const int64_t*);      \
  template void max_unpool_backward<T>(const UnpoolParams&, T*, const T*, const int64_t*);     \
  template void interpolate_forward<T>(const InterpParams&, T*, const T*);                     \
  template void interpolate_backward<T>(const InterpParams&, T*, const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::ref
