// pool_planes.cpp — fast max/avg pooling loops. Forward: OpenMP over output rows (plane, od, oh);
// each row gathers its input row pointers once, the W outputs whose windows lie fully inside the
// input go to the microkernel in one call (SIMD over W), border and adaptive outputs one by one.
// Max backward: OpenMP over planes, each scattering in raster order (deterministic, race-free);
// avg backward: a gather over input rows.
#include <algorithm>
#include <string>
#include <vector>

#include "cnnfast/checked.h"
#include "cnnfast/runtime.h"
#include "cpu/parallel.h"
#include "cpu/pool_dispatch.h"
#include "cpu/pool_planes.h"

namespace cnnfast::cpu {
namespace {

struct Plan {
  std::vector<PoolWindow> wd, wh, ww;
  int64_t lo = 0, hi = 0;  // outputs [lo, hi) along W have full, unclipped windows
};

Plan make_plan(const PoolParams& p) {
  Plan pl{pool_windows(p, 0), pool_windows(p, 1), pool_windows(p, 2)};
  if (!p.adaptive) {
    const int64_t s = p.stride[2], last = p.in[2] - 1 - (p.kernel[2] - 1) * p.dil[2] + p.pad[2];
    pl.lo = std::min((p.pad[2] + s - 1) / s, p.out[2]);
    pl.hi = last < 0 ? pl.lo : std::max(pl.lo, std::min(p.out[2], last / s + 1));
  }
  return pl;
}

// Calls f(plane, od, oh, nrows, rows, row_index) for every output row; rows point at column 0 of
// the input rows (d, h) of the row's window, row_index at their flat plane indices.
template <class T, class F>
void for_each_output_row(const PoolParams& p, const Plan& plan, const T* x, F&& f) {
  const int64_t OD = p.out[0], OH = p.out[1], H = p.in[1], W = p.in[2];
  for_each_item(p.planes() * OD * OH, get_num_threads(), [&](int64_t item, int) {
    constexpr int64_t kSmall = 64;  // windows up to 64 rows need no heap
    const T* rows_small[kSmall];
    int64_t index_small[kSmall];
    thread_local std::vector<const T*> rows_big;
    thread_local std::vector<int64_t> index_big;
    const int64_t pl = item / (OD * OH), od = item / OH % OD, oh = item % OH;
    const PoolWindow &a = plan.wd[od], &b = plan.wh[oh];
    const int64_t nrows = a.count * b.count;
    const T** rows = rows_small;
    int64_t* row_index = index_small;
    if (nrows > kSmall) {
      rows_big.resize(static_cast<size_t>(nrows));
      index_big.resize(static_cast<size_t>(nrows));
      rows = rows_big.data();
      row_index = index_big.data();
    }
    const T* xp = x + pl * p.in_plane();
    int64_t r = 0;
    for (int64_t i = 0; i < a.count; ++i)
      for (int64_t j = 0; j < b.count; ++j, ++r) {
        row_index[r] = ((a.first + i * a.step) * H + b.first + j * b.step) * W;
        rows[r] = xp + row_index[r];
      }
    f(pl, od, oh, nrows, rows, row_index);
  });
}

template <class T>
T avg_scale(const AvgOptions& o, const PoolWindow& a, const PoolWindow& b, const PoolWindow& c) {
  if (o.divisor_override > 0) return T(1) / T(o.divisor_override);
  if (o.count_include_pad) return T(1) / T(a.padded * b.padded * c.padded);
  return T(1) / T(a.count * b.count * c.count);
}

// A 2x2 window without padding: 1/4, or the override.
template <class T>
T avg_2x2_scale(const AvgOptions& o) {
  return o.divisor_override > 0 ? T(1) / T(o.divisor_override) : T(1) / T(4);
}

}  // namespace

template <class T>
void max_pool_forward_planes(const PoolParams& p, T* y, int64_t* idx, const T* x) {
  if (pool2x2_applies(p)) return max_pool2x2_forward(p, y, idx, x);
  const Plan plan = make_plan(p);
  const PoolKernels<T>& k = pool_kernels<T>(p.in_plane());
  if (p.adaptive && p.out_plane() == 1) {  // global: each plane is one contiguous window
    const int64_t zero = 0;
    for_each_item(p.planes(), get_num_threads(), [&](int64_t pl, int) {
      const T* plane = x + pl * p.in_plane();
      k.max_rows(1, 1, &plane, &zero, 0, p.in_plane(), 1, 1, y + pl, idx ? idx + pl : nullptr);
    });
    return;
  }
  const int64_t OW = p.out[2];
  for_each_output_row(p, plan, x, [&](int64_t pl, int64_t od, int64_t oh, int64_t nrows,
                                      const T* const* rows, const int64_t* row_index) {
    const int64_t o = pl * p.out_plane() + (od * p.out[1] + oh) * OW;
    T* yr = y + o;
    int64_t* ir = idx ? idx + o : nullptr;
    auto one = [&](int64_t ow) {
      const PoolWindow& c = plan.ww[ow];
      k.max_rows(1, nrows, rows, row_index, c.first, c.count, c.step, 1, yr + ow,
                 ir ? ir + ow : nullptr);
    };
    for (int64_t ow = 0; ow < plan.lo; ++ow) one(ow);
    if (plan.hi > plan.lo)
      k.max_rows(plan.hi - plan.lo, nrows, rows, row_index, plan.lo * p.stride[2] - p.pad[2],
                 p.kernel[2], p.dil[2], p.stride[2], yr + plan.lo, ir ? ir + plan.lo : nullptr);
    for (int64_t ow = std::max(plan.hi, plan.lo); ow < OW; ++ow) one(ow);
  });
}

template <class T>
void avg_pool_forward_planes(const PoolParams& p, const AvgOptions& opt, T* y, const T* x) {
  if (pool2x2_applies(p)) return avg_pool2x2_forward(p, avg_2x2_scale<T>(opt), y, x);
  const Plan plan = make_plan(p);
  const PoolKernels<T>& k = pool_kernels<T>(p.in_plane());
  if (p.adaptive && p.out_plane() == 1) {  // global: each plane is one contiguous window
    const T scale = T(1) / T(p.in_plane());
    for_each_item(p.planes(), get_num_threads(), [&](int64_t pl, int) {
      const T* plane = x + pl * p.in_plane();
      k.sum_rows(1, 1, &plane, 0, p.in_plane(), 1, 1, scale, y + pl);
    });
    return;
  }
  const int64_t OW = p.out[2];
  for_each_output_row(p, plan, x, [&](int64_t pl, int64_t od, int64_t oh, int64_t nrows,
                                      const T* const* rows, const int64_t*) {
    T* yr = y + pl * p.out_plane() + (od * p.out[1] + oh) * OW;
    const PoolWindow &a = plan.wd[od], &b = plan.wh[oh];
    auto one = [&](int64_t ow) {
      const PoolWindow& c = plan.ww[ow];
      k.sum_rows(1, nrows, rows, c.first, c.count, c.step, 1, avg_scale<T>(opt, a, b, c), yr + ow);
    };
    for (int64_t ow = 0; ow < plan.lo; ++ow) one(ow);
    if (plan.hi > plan.lo) {
      const PoolWindow full{0, p.kernel[2], 1, p.kernel[2]};
      k.sum_rows(plan.hi - plan.lo, nrows, rows, plan.lo * p.stride[2] - p.pad[2], p.kernel[2],
                 p.dil[2], p.stride[2], avg_scale<T>(opt, a, b, full), yr + plan.lo);
    }
    for (int64_t ow = std::max(plan.hi, plan.lo); ow < OW; ++ow) one(ow);
  });
}

template <class T>
void max_pool_backward_planes(const PoolParams& p, T* dx, const T* dy, const int64_t* idx) {
  if (pool2x2_applies(p) && max_pool2x2_backward(p, dx, dy, idx)) return;
  const int64_t in = p.in_plane(), out = p.out_plane();
  for_each_item(p.planes(), get_num_threads(), [&](int64_t pl, int) {
    T* dxp = dx + pl * in;  // (in,) one plane
    const T* dyp = dy + pl * out;
    const int64_t* ip = idx + pl * out;
    std::fill(dxp, dxp + in, T(0));
    for (int64_t o = 0; o < out; ++o) {
      const int64_t i = ip[o];
      if (static_cast<uint64_t>(i) >= static_cast<uint64_t>(in))
        arg_error("indices: value " + std::to_string(i) + " is out of range [0, " +
                  std::to_string(in) + ") of the input plane");
      dxp[i] += dyp[o];
    }
  });
}

namespace {
// For every input index along one dim, the outputs whose windows read it (CSR: out[off[i]..off[i+1])).
struct Inverse {
  std::vector<int64_t> off, out;
};
Inverse invert(const std::vector<PoolWindow>& wins, int64_t in) {
  Inverse inv;
  inv.off.assign(static_cast<size_t>(in + 1), 0);
  for (const PoolWindow& w : wins)
    for (int64_t t = 0; t < w.count; ++t) ++inv.off[w.first + t * w.step + 1];
  for (int64_t i = 0; i < in; ++i) inv.off[i + 1] += inv.off[i];
  inv.out.resize(static_cast<size_t>(inv.off[in]));
  std::vector<int64_t> fill(inv.off.begin(), inv.off.end() - 1);
  for (int64_t o = 0; o < static_cast<int64_t>(wins.size()); ++o)
    for (int64_t t = 0; t < wins[o].count; ++t) inv.out[fill[wins[o].first + t * wins[o].step]++] = o;
  return inv;
}
// Per-dim factors of the avg divisor (the divisor is a product over dims, or the override).
template <class T>
std::vector<T> factors(const std::vector<PoolWindow>& wins, const AvgOptions& o) {
  std::vector<T> f;
  for (const PoolWindow& w : wins)
    f.push_back(o.divisor_override > 0 ? T(1) : T(1) / T(o.count_include_pad ? w.padded : w.count));
  return f;
}
}  // namespace

// A gather over rows: each input row (plane, d, h) sums the scaled grad rows of the output rows
// that read it into an OW-long buffer, then spreads that along W inside the row. Each dx row is
// written by one thread only (OpenMP over input rows): no races, a fixed summation order.
template <class T>
void avg_pool_backward_planes(const PoolParams& p, const AvgOptions& opt, T* dx, const T* dy) {
  if (pool2x2_applies(p)) return avg_pool2x2_backward(p, avg_2x2_scale<T>(opt), dx, dy);
  const Plan plan = make_plan(p);
  const Inverse id = invert(plan.wd, p.in[0]), ih = invert(plan.wh, p.in[1]);
  const std::vector<T> fd = factors<T>(plan.wd, opt), fh = factors<T>(plan.wh, opt);
  std::vector<T> fw = factors<T>(plan.ww, opt);
  if (opt.divisor_override > 0)
    for (T& v : fw) v /= T(opt.divisor_override);
  const int64_t D = p.in[0], H = p.in[1], W = p.in[2], OH = p.out[1], OW = p.out[2];
  for_each_item(p.planes() * D * H, get_num_threads(), [&](int64_t item, int) {
    constexpr int64_t kSmall = 512;  // rows up to 512 outputs wide need no heap
    T small[kSmall];
    thread_local std::vector<T> big;
    if (OW > kSmall) big.resize(static_cast<size_t>(OW));
    T* acc = OW > kSmall ? big.data() : small;  // (OW,) Σ of the grad rows reading this row
    std::fill(acc, acc + OW, T(0));
    const int64_t pl = item / (D * H), d = item / H % D, h = item % H;
    T* dxr = dx + item * W;  // (W,) this input row
    const T* dyp = dy + pl * p.out_plane();
    bool any = false;
    for (int64_t a = id.off[d]; a < id.off[d + 1]; ++a)
      for (int64_t b = ih.off[h]; b < ih.off[h + 1]; ++b) {
        const int64_t od = id.out[a], oh = ih.out[b];
        const T f = fd[od] * fh[oh];
        const T* g = dyp + (od * OH + oh) * OW;
        for (int64_t ow = 0; ow < OW; ++ow) acc[ow] += f * g[ow];
        any = true;
      }
    if (!any) {
      std::fill(dxr, dxr + W, T(0));
      return;
    }
    std::fill(dxr, dxr + W, T(0));
    for (int64_t ow = 0; ow < OW; ++ow) acc[ow] *= fw[ow];
    auto spread = [&](int64_t ow) {  // one output's window, clipped (borders, adaptive)
      const PoolWindow& c = plan.ww[ow];
      for (int64_t t = 0; t < c.count; ++t) dxr[c.first + t * c.step] += acc[ow];
    };
    for (int64_t ow = 0; ow < plan.lo; ++ow) spread(ow);
    if (plan.hi > plan.lo) {  // interior: tap by tap, a strided add over the outputs
      const int64_t s = p.stride[2], base = plan.lo * s - p.pad[2];
      for (int64_t t = 0; t < p.kernel[2]; ++t) {
        T* dst = dxr + base + t * p.dil[2];
        for (int64_t ow = plan.lo; ow < plan.hi; ++ow) dst[(ow - plan.lo) * s] += acc[ow];
      }
    }
    for (int64_t ow = std::max(plan.hi, plan.lo); ow < OW; ++ow) spread(ow);
  });
}

#define CNNFAST_INSTANTIATE(T)                                                                  \
  template void max_pool_forward_planes<T>(const PoolParams&, T*, int64_t*, const T*);          \
  template void max_pool_backward_planes<T>(const PoolParams&, T*, const T*, const int64_t*);   \
  template void avg_pool_forward_planes<T>(const PoolParams&, const AvgOptions&, T*, const T*); \
  template void avg_pool_backward_planes<T>(const PoolParams&, const AvgOptions&, T*, const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
