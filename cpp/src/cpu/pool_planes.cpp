// pool_planes.cpp — fast max/avg pooling loops. Forward: OpenMP over output rows (plane, od, oh);
// each row gathers its input row pointers once, the W outputs whose windows lie fully inside the
// input go to the microkernel in one call (SIMD over W), border and adaptive outputs one by one
// (avg: all of a row in one call when its windows form a lattice).
// Max backward: OpenMP over planes, each scattered in raster order (deterministic, race-free) into
// bands of the plane zeroed just ahead; avg backward: a gather over input rows.
#include <algorithm>
#include <cstring>
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

// Calls f(plane, od, oh, nrows, rows, row_index) for every output row; rows point at column 0 of
// the input rows (d, h) of the row's window, row_index at their flat plane indices.
template <class T, class F>
void for_each_output_row(const PoolParams& p, const Plan& plan, const T* x, F&& f) {
  const int64_t H = p.in[1], W = p.in[2];
  constexpr int64_t kRowsPerThread = 16;  // below this a thread costs more than it saves
  for_each_raster(p.planes(), p.out[0], p.out[1], kRowsPerThread, [&](int64_t pl, int64_t od,
                                                                      int64_t oh) {
    const PoolWindow &a = plan.wd[od], &b = plan.wh[oh];
    const int64_t nrows = a.count * b.count;
    RowScratch<const T*, kWindowRows> row_ptrs(nrows);
    RowScratch<int64_t, kWindowRows> row_indices(nrows);
    const T** rows = row_ptrs.data;
    int64_t* row_index = row_indices.data;
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
  const int64_t OW = p.out[2], W = p.in[2];
  // Windows that cover their row (kernel >= stride, adaptive) are summed down the rows first,
  // once per column, then across on that one row: 3x3 windows read 3 + 3 values an output, not 9.
  const bool rows_first = p.adaptive || p.kernel[2] >= p.stride[2];
  // When the W-windows form one lattice with one divisor, the rows-first row is zero-padded and
  // all OW outputs are one kernel call: padding counted (or an override) and no window cut short
  // by ceil_mode; or adaptive windows that tile the row (W a multiple of OW, e.g. 112 -> 7).
  const bool adaptive_tiles = p.adaptive && W % OW == 0;
  const bool lattice =
      adaptive_tiles ||
      (!p.adaptive && (opt.divisor_override > 0 ||
                       (opt.count_include_pad &&
                        std::all_of(plan.ww.begin(), plan.ww.end(), [&](const PoolWindow& c) {
                          return c.padded == p.kernel[2];
                        }))));
  const int64_t kw = adaptive_tiles ? W / OW : p.kernel[2], sw = adaptive_tiles ? kw : p.stride[2];
  const int64_t dw = adaptive_tiles ? 1 : p.dil[2], pw = adaptive_tiles ? 0 : p.pad[2];
  const int64_t pad_left = lattice ? pw : 0;  // zeros the lattice needs around the row
  const int64_t pad_right =
      lattice ? std::max<int64_t>(0, (OW - 1) * sw - pw + (kw - 1) * dw + 1 - W) : 0;
  const bool padded = pad_left > 0 || pad_right > 0;
  for_each_output_row(p, plan, x, [&](int64_t pl, int64_t od, int64_t oh, int64_t nrows,
                                      const T* const* rows, const int64_t*) {
    T* yr = y + pl * p.out_plane() + (od * p.out[1] + oh) * OW;
    const PoolWindow &a = plan.wd[od], &b = plan.wh[oh];
    const bool sum_rows_first = rows_first && (nrows > 1 || padded);
    // (pad_left + W + pad_right,) Σ over the window's rows, zeros in the padding
    RowScratch<T, kRowValues> sums(sum_rows_first ? pad_left + W + pad_right : 0);
    const T* summed;
    if (sum_rows_first) {
      std::fill(sums.data, sums.data + pad_left, T(0));
      std::fill(sums.data + pad_left + W, sums.data + pad_left + W + pad_right, T(0));
      k.sum_rows(W, nrows, rows, 0, 1, 1, 1, T(1), sums.data + pad_left);
      summed = sums.data;
      rows = &summed;
      nrows = 1;
    }
    if (lattice && nrows == 1 && (sum_rows_first || !padded)) {  // a row the lattice can read
      const PoolWindow full{0, kw, 1, kw};
      k.sum_rows(OW, 1, rows, 0, kw, dw, sw, avg_scale<T>(opt, a, b, full), yr);
      return;
    }
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

namespace {
// The cold path of the banded scatter below: a switch at or past the zeroed part of the plane
// (an index not from this pooling's windows, or out of range). Zeroes through i's row and
// returns the new end of the zeroed part; out of range is an error.
template <class T>
[[gnu::noinline]] int64_t zero_through(T* dxp, int64_t zeroed, int64_t i, int64_t in, int64_t W) {
  if (static_cast<uint64_t>(i) >= static_cast<uint64_t>(in))
    arg_error("indices: value " + std::to_string(i) + " is out of range [0, " +
              std::to_string(in) + ") of the input plane");
  const int64_t to = std::min(in, (i / W + 1) * W);
  std::memset(dxp + zeroed, 0, sizeof(T) * static_cast<size_t>(to - zeroed));
  return to;
}
}  // namespace

// OpenMP over planes, each scattered in raster order (deterministic, race-free). A plane is
// zeroed a band at a time: before output row (od, oh) scatters, the plane up to the end of its
// window's last input row, so the adds land in lines just zeroed (L1), not in a whole plane
// filled beforehand.
template <class T>
void max_pool_backward_planes(const PoolParams& p, T* dx, const T* dy, const int64_t* idx) {
  if (pool2x2_applies(p) && max_pool2x2_backward(p, dx, dy, idx)) return;
  const int64_t in = p.in_plane(), out = p.out_plane(), H = p.in[1], W = p.in[2];
  const int64_t OD = p.out[0], OH = p.out[1], OW = p.out[2];
  const std::vector<PoolWindow> wd = pool_windows(p, 0), wh = pool_windows(p, 1);
  std::vector<int64_t> band_end(static_cast<size_t>(OD * OH));  // (OD, OH) in elements
  for (int64_t od = 0; od < OD; ++od)
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t d = wd[od].first + (wd[od].count - 1) * wd[od].step;  // counts are >= 1
      const int64_t h = wh[oh].first + (wh[oh].count - 1) * wh[oh].step;
      band_end[od * OH + oh] = std::min(in, (d * H + h + 1) * W);
    }
  for_each_item(p.planes(), get_num_threads(), [&](int64_t pl, int) {
    T* dxp = dx + pl * in;  // (in,) one plane
    const T* dyp = dy + pl * out;
    const int64_t* ip = idx + pl * out;
    int64_t zeroed = 0;  // dxp[0, zeroed) is zero or holds its sum so far
    for (int64_t r = 0; r < OD * OH; ++r) {
      if (band_end[r] > zeroed) {
        std::memset(dxp + zeroed, 0, sizeof(T) * static_cast<size_t>(band_end[r] - zeroed));
        zeroed = band_end[r];
      }
      const int64_t* ir = ip + r * OW;  // (OW,) this output row's switches
      const T* gr = dyp + r * OW;
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t i = ir[ow];
        if (static_cast<uint64_t>(i) >= static_cast<uint64_t>(zeroed))
          zeroed = zero_through(dxp, zeroed, i, in, W);
        dxp[i] += gr[ow];
      }
    }
    std::memset(dxp + zeroed, 0, sizeof(T) * static_cast<size_t>(in - zeroed));
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

// The W direction of a (non-adaptive) avg backward as a gather: input w = s*j + f is read by
// output ow through tap t when ow*s - pad + t*dil = w, i.e. for the taps with
// (f + pad - t*dil) ≡ 0 (mod s), ow = j + (f + pad - t*dil) / s. Outputs outside [0, OW) read
// zeros: the gradient row lives at buf[left, left + OW) of a zero-padded buffer of len values.
struct WGather {
  int64_t s = 1, kt = 1, left = 0, len = 0;
  std::vector<int64_t> ntaps, offs;  // (s,), (s, kt): per phase, buffer offsets from j
};
WGather w_gather(const PoolParams& p) {
  WGather g;
  g.s = p.stride[2];
  g.kt = p.kernel[2];
  g.ntaps.assign(static_cast<size_t>(g.s), 0);
  g.offs.assign(static_cast<size_t>(g.s * g.kt), 0);
  int64_t lo = 0, hi = 0;
  for (int64_t f = 0; f < g.s; ++f)
    for (int64_t t = 0; t < g.kt; ++t) {
      const int64_t num = f + p.pad[2] - t * p.dil[2];
      if (((num % g.s) + g.s) % g.s != 0) continue;
      const int64_t c = num / g.s;  // exact
      g.offs[f * g.kt + g.ntaps[f]++] = c;
      lo = std::min(lo, c);
      hi = std::max(hi, c);
    }
  g.left = -lo;
  for (int64_t& c : g.offs) c += g.left;
  const int64_t J = (p.in[2] + g.s - 1) / g.s;  // j < J
  g.len = g.left + std::max(p.out[2], J + hi);
  return g;
}

// Adaptive windows (contiguous, starts and ends non-decreasing) spread along one dx row, each
// element stored once where only one window holds it and added to where windows overlap.
template <class T>
void spread_adaptive(const std::vector<PoolWindow>& ww, const T* acc, int64_t W, T* dxr) {
  int64_t done = 0;  // dxr[0, done) written
  for (size_t ow = 0; ow < ww.size(); ++ow) {
    const int64_t lo = ww[ow].first, hi = lo + ww[ow].count;
    if (lo > done) std::fill(dxr + done, dxr + lo, T(0));
    for (int64_t w = lo; w < std::min(hi, done); ++w) dxr[w] += acc[ow];
    if (hi > done) std::fill(dxr + std::max(lo, done), dxr + hi, acc[ow]);
    done = std::max(done, hi);
  }
  std::fill(dxr + done, dxr + W, T(0));
}
// For every input row (d, h) of a plane, the grad rows that read it: their offsets in the grad
// plane and their divisor factors (D and H parts), in raster order; CSR over d * H + h. Built
// once a call, so the per-row loop only adds its plane's base.
template <class T>
struct RowSources {
  std::vector<int64_t> start, offset;
  std::vector<T> factor;
};
template <class T>
RowSources<T> row_sources(const PoolParams& p, const Plan& plan, const Inverse& id,
                          const Inverse& ih, const AvgOptions& opt) {
  const std::vector<T> fd = factors<T>(plan.wd, opt), fh = factors<T>(plan.wh, opt);
  const int64_t D = p.in[0], H = p.in[1], OH = p.out[1], OW = p.out[2];
  RowSources<T> s;
  s.start.reserve(static_cast<size_t>(D * H + 1));
  s.start.push_back(0);
  for (int64_t d = 0; d < D; ++d)
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t a = id.off[d]; a < id.off[d + 1]; ++a)
        for (int64_t b = ih.off[h]; b < ih.off[h + 1]; ++b) {
          const int64_t od = id.out[a], oh = ih.out[b];
          s.offset.push_back((od * OH + oh) * OW);
          s.factor.push_back(fd[od] * fh[oh]);
        }
      s.start.push_back(static_cast<int64_t>(s.offset.size()));
    }
  return s;
}
}  // namespace

// A gather over rows: each input row (plane, d, h) sums the scaled grad rows of the output rows
// that read it into an OW-long buffer, then gathers that along W (adaptive: spreads it). Each dx
// row is written once, by one thread (OpenMP over input rows): no races, a fixed summation order.
template <class T>
void avg_pool_backward_planes(const PoolParams& p, const AvgOptions& opt, T* dx, const T* dy) {
  if (pool2x2_applies(p)) return avg_pool2x2_backward(p, avg_2x2_scale<T>(opt), dx, dy);
  const Plan plan = make_plan(p);
  const PoolKernels<T>& k = pool_kernels<T>(p.in_plane());
  const Inverse id = invert(plan.wd, p.in[0]), ih = invert(plan.wh, p.in[1]);
  std::vector<T> fw = factors<T>(plan.ww, opt);
  if (opt.divisor_override > 0)
    for (T& v : fw) v /= T(opt.divisor_override);
  const RowSources<T> src = row_sources<T>(p, plan, id, ih, opt);
  const WGather g = p.adaptive ? WGather{} : w_gather(p);
  const int64_t D = p.in[0], H = p.in[1], W = p.in[2], OW = p.out[2];
  const int64_t len = p.adaptive ? OW : g.len, left = p.adaptive ? 0 : g.left;
  // Rows read by the same output rows as the row above get its values (adaptive and global
  // pooling: whole bands of identical rows).
  std::vector<char> same_as_above(static_cast<size_t>(H), 0);
  for (int64_t h = 1; h < H; ++h)
    same_as_above[h] = std::equal(ih.out.begin() + ih.off[h], ih.out.begin() + ih.off[h + 1],
                                  ih.out.begin() + ih.off[h - 1], ih.out.begin() + ih.off[h]);
  constexpr int64_t kRowsPerThread = 16;  // below this a thread costs more than it saves
  for_each_raster(p.planes(), D, H, kRowsPerThread, [&](int64_t pl, int64_t d, int64_t h,
                                                        bool first) {
    T* dxr = dx + ((pl * D + d) * H + h) * W;  // (W,) this input row
    if (!first && h > 0 && same_as_above[h]) {  // the row above was written by this thread
      std::copy(dxr - W, dxr, dxr);
      return;
    }
    const int64_t e0 = src.start[d * H + h], n = src.start[d * H + h + 1] - e0;
    if (n == 0) {  // no output reads this row
      std::fill(dxr, dxr + W, T(0));
      return;
    }
    RowScratch<T, kRowValues> buf(len);
    std::fill(buf.data, buf.data + left, T(0));
    std::fill(buf.data + left + OW, buf.data + len, T(0));
    T* acc = buf.data + left;  // (OW,) Σ of the scaled grad rows reading this row
    const T* dyp = dy + pl * p.out_plane();
    RowScratch<const T*, kWindowRows> grad_rows(n);  // the grad rows reading this row
    for (int64_t i = 0; i < n; ++i) grad_rows.data[i] = dyp + src.offset[e0 + i];
    k.combine_rows(OW, n, grad_rows.data, src.factor.data() + e0, fw.data(), acc);
    if (p.adaptive)
      spread_adaptive(plan.ww, acc, W, dxr);
    else
      k.gather_phases(W, g.s, g.kt, g.ntaps.data(), g.offs.data(), buf.data, dxr);
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
