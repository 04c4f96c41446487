// pool_planes.cpp — fast max/avg pooling loops. Forward: OpenMP over output rows (plane, od, oh);
// each row gathers its input row pointers once, the W outputs whose windows lie fully inside the
// input go to the microkernel in one call (SIMD over W), border and adaptive outputs one by one
// (avg: all of a row in one call when its windows form a lattice).
// Max backward: OpenMP over planes, each scattered in raster order (deterministic, race-free) into
// bands of the plane zeroed just ahead. (Avg backward: pool_avg_backward.cpp.)
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "cnnfast/checked.h"
#include "cnnfast/runtime.h"
#include "cpu/parallel.h"
#include "cpu/pool_dispatch.h"
#include "cpu/pool_planes.h"
#include "cpu/pool_rows.h"

namespace cnnfast::cpu {
namespace {

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

// Below this many taps every kernel reduces a single output's window with the scalar loop
// (max_rows_one / sum_rows_one), which the border and adaptive outputs below call inline instead
// of through the kernel table. From here on they go to the kernel: AVX2 vectorises the taps of
// a contiguous window of 16 or more (two 8-lane vectors), AVX-512 from 32.
constexpr int64_t kLongWindow = 16;

template <class T>
T avg_scale(const AvgOptions& o, const PoolWindow& a, const PoolWindow& b, const PoolWindow& c) {
  if (o.divisor_override > 0) return T(1) / T(o.divisor_override);
  // products in double: a kernel of 2^21 per dim would overflow int64 (exact below 2^53)
  if (o.count_include_pad) return T(1) / T(double(a.padded) * double(b.padded) * double(c.padded));
  return T(1) / T(double(a.count) * double(b.count) * double(c.count));
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
    // A border or adaptive output. Two columns of at most 4 rows (3-wide windows at padding 1):
    // the kernel's branch-free vector reduction (A/B against the loop below: 0.935 at 1 thread,
    // 0.98-1.01 at 2; RESULTS (p)). Other short windows: the scalar loop inline (a 3x2 window:
    // 11 ns inline, 20 ns through the kernel's generic max_rows).
    auto one = [&](int64_t ow) {
      const PoolWindow& c = plan.ww[ow];
      if (c.count == 2 && c.step == 1 && nrows <= 4)
        k.max_2cols(nrows, rows, row_index, c.first, yr + ow, ir ? ir + ow : nullptr);
      else if (c.step == 1 && c.count >= kLongWindow)
        k.max_rows(1, nrows, rows, row_index, c.first, c.count, 1, 1, yr + ow,
                   ir ? ir + ow : nullptr);
      else
        max_rows_one(nrows, rows, row_index, c.count, c.step, c.first, yr + ow,
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
    // Planes past kGlobalChunk elements are summed a chunk at a time into a double: one float
    // sum over 2^31 halves stalls at 2^24 (global_avg_pool gave 0.25 for a mean of 0.5).
    // Smaller ones go to sum_planes about 16 K elements of planes a call.
    constexpr int64_t kGlobalChunk = int64_t(1) << 12;
    const int64_t n = p.in_plane(), planes = p.planes();
    const T scale = T(1) / T(n);
    if (n <= kGlobalChunk) {
      const int64_t per = std::max<int64_t>(1, 16384 / n), blocks = (planes + per - 1) / per;
      for_each_item(blocks, get_num_threads(), [&](int64_t b, int) {
        const int64_t p0 = b * per;
        k.sum_planes(std::min(per, planes - p0), n, x + p0 * n, scale, y + p0);
      });
      return;
    }
    for_each_item(planes, get_num_threads(), [&](int64_t pl, int) {
      double total = 0;
      for (int64_t c0 = 0; c0 < n; c0 += kGlobalChunk) {
        T part;
        k.sum_planes(1, std::min(kGlobalChunk, n - c0), x + pl * n + c0, T(1), &part);
        total += double(part);
      }
      y[pl] = T(total / double(n));
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
  const bool lattice_windows =
      adaptive_tiles ||
      (!p.adaptive && (opt.divisor_override > 0 ||
                       (opt.count_include_pad &&
                        std::all_of(plan.ww.begin(), plan.ww.end(), [&](const PoolWindow& c) {
                          return c.padded == p.kernel[2];
                        }))));
  const int64_t kw = adaptive_tiles ? W / OW : p.kernel[2], sw = adaptive_tiles ? kw : p.stride[2];
  const int64_t dw = adaptive_tiles ? 1 : p.dil[2], pw = adaptive_tiles ? 0 : p.pad[2];
  const int64_t lattice_right = std::max<int64_t>(0, (OW - 1) * sw - pw + (kw - 1) * dw + 1 - W);
  // Zeros around the row at most about the row itself: a kernel mostly over padding (2^30 taps
  // on 5 columns) takes the clipped windows instead of a row of 2^30 zeros summed per output.
  const bool lattice = lattice_windows && pw + lattice_right <= W + 64;
  const int64_t pad_left = lattice ? pw : 0;  // zeros the lattice needs around the row
  const int64_t pad_right = lattice ? lattice_right : 0;
  const bool padded = pad_left > 0 || pad_right > 0;
  // Regular windows: the rows the window 4 output rows on adds are fetched ahead. The light
  // sums left the loads waiting on memory (A/B, k3s2p1 on 32x64x112x112: 0.80-0.91 at 1
  // thread; 0.84-1.03 at 2, the gain in the minutes of high bandwidth). Max pooling's compare
  // chains hide that wait (1.02-1.04 with it); adaptive windows' long runs of rows are found by
  // the hardware prefetcher (1.10-1.20 with it).
  const int64_t x_bytes = p.planes() * p.in_plane() * int64_t(sizeof(T));
  const int64_t step_bytes = p.adaptive ? 0 : p.stride[1] * W * int64_t(sizeof(T));
  for_each_output_row(p, plan, x, [&](int64_t pl, int64_t od, int64_t oh, int64_t nrows,
                                      const T* const* rows, const int64_t*) {
    T* yr = y + pl * p.out_plane() + (od * p.out[1] + oh) * OW;
    if (step_bytes > 0) {  // the new rows of the window 4 steps on: up to its end
      const int64_t end = (rows[nrows - 1] + W - x) * int64_t(sizeof(T));  // this window's
      prefetch_lines<0>(x, x_bytes, end + 3 * step_bytes, step_bytes);
    }
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
    auto one = [&](int64_t ow) {  // short windows inline, as for max
      const PoolWindow& c = plan.ww[ow];
      const T scale = avg_scale<T>(opt, a, b, c);
      if (c.count >= 2 && !(c.step == 1 && c.count >= kLongWindow))
        yr[ow] = scale * sum_rows_one(nrows, rows, c.count, c.step, c.first);
      else  // one column (its column-sum loop) or long contiguous windows (vector taps)
        k.sum_rows(1, nrows, rows, c.first, c.count, c.step, 1, scale, yr + ow);
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

#define CNNFAST_INSTANTIATE(T)                                                                  \
  template void max_pool_forward_planes<T>(const PoolParams&, T*, int64_t*, const T*);          \
  template void max_pool_backward_planes<T>(const PoolParams&, T*, const T*, const int64_t*);   \
  template void avg_pool_forward_planes<T>(const PoolParams&, const AvgOptions&, T*, const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
