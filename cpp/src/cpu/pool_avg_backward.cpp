// pool_avg_backward.cpp — avg pooling's backward as a gather over input rows: each dx row sums
// the scaled grad rows of the output rows that read it (H/D direction, combine_rows), then
// gathers that along W (gather_phases; adaptive windows: spread). Each dx row is written once,
// by one thread: no races, a fixed summation order.
#include <algorithm>
#include <vector>

#include "cpu/parallel.h"
#include "cpu/pool_dispatch.h"
#include "cpu/pool_planes.h"
#include "cpu/pool_rows.h"

namespace cnnfast::cpu {
namespace {
// For every input index along one dim, the outputs whose windows read it
// (CSR: out[off[i] .. off[i+1])).
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
    for (int64_t t = 0; t < wins[o].count; ++t)
      inv.out[fill[wins[o].first + t * wins[o].step]++] = o;
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
  const int64_t S = p.stride[2], dil = p.dil[2], pad = p.pad[2], OW = p.out[2];
  // The phase period: a stride of at least W gives each w its own phase (j = 0) either way.
  g.s = std::min(S, p.in[2]);
  const int64_t J = (p.in[2] + S - 1) / S;  // j < J
  // Only taps that join some output (0 <= j + c < OW for a j < J) can be nonzero; the others
  // read the buffer's zeros. Leaving them out bounds the tables by the sizes, not the kernel
  // (a kernel of 2^30 over 5 columns and its padding): t*dil in
  // [pad - S*(OW - 1), s - 1 + pad + S*(J - 1)] (each term at most the padded input).
  const int64_t t_lo = std::max<int64_t>(0, (pad - S * (OW - 1)) / dil);
  const int64_t t_hi = std::min(p.kernel[2] - 1, (g.s - 1 + pad + S * (J - 1)) / dil);
  // Tap t serves the one phase f ≡ t*dil - pad (mod S); taps in t order within a phase.
  const auto phase = [&](int64_t t) { return ((t * dil - pad) % S + S) % S; };
  g.ntaps.assign(static_cast<size_t>(g.s), 0);
  for (int64_t t = t_lo; t <= t_hi; ++t)
    if (phase(t) < g.s) ++g.ntaps[phase(t)];
  g.kt = std::max<int64_t>(1, *std::max_element(g.ntaps.begin(), g.ntaps.end()));
  g.offs.assign(static_cast<size_t>(g.s * g.kt), 0);
  std::fill(g.ntaps.begin(), g.ntaps.end(), 0);
  int64_t lo = 0, hi = 0;
  for (int64_t t = t_lo; t <= t_hi; ++t) {
    const int64_t f = phase(t);
    if (f >= g.s) continue;
    const int64_t c = (f + pad - t * dil) / S;  // exact
    g.offs[f * g.kt + g.ntaps[f]++] = c;
    lo = std::min(lo, c);
    hi = std::max(hi, c);
  }
  g.left = -lo;
  for (int64_t& c : g.offs) c += g.left;
  g.len = g.left + std::max(OW, J + hi);
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
  if (p.adaptive && p.out_plane() == 1 && p.in_plane() <= 4096) {
    // Global pooling over small planes: dx = dy / n over each plane, about 16 K elements of
    // planes an item (the row gather below costs ~8 ns a plane: 7x7 planes ran at 0.47x torch).
    const int64_t n = p.in_plane(), planes = p.planes();
    const int64_t per = std::max<int64_t>(1, 16384 / n), blocks = (planes + per - 1) / per;
    const T scale = T(1) / T(n);
    for_each_item(blocks, get_num_threads(), [&](int64_t b, int) {
      const int64_t end = std::min(planes, b * per + per);
      if (n == 1) {  // 1x1 planes: one scaled copy, vectorized
        for (int64_t pl = b * per; pl < end; ++pl) dx[pl] = dy[pl] * scale;
        return;
      }
      for (int64_t pl = b * per; pl < end; ++pl) std::fill_n(dx + pl * n, n, dy[pl] * scale);
    });
    return;
  }
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
  // The zeros on the row buffer's two sides as kZeros fixed-size stores each when they are that
  // few, not two memset calls a row (A/B, k3s2p1: 0.94 at 2 threads, 0.96 at 1).
  constexpr int64_t kZeros = 8;
  // Copied rows (adaptive bands) are bound by the stores' line fills: the row ~2 KB on is asked
  // for, owned, ahead (A/B, 32x64x112x112 -> 7x7 and 1x1: 0.80-0.92; rows that gather instead
  // gain nothing, 0.98-1.02, and cost 1.06-1.09 with it).
  const int64_t row_bytes = W * int64_t(sizeof(T));
  const int64_t dx_bytes = p.planes() * p.in_plane() * int64_t(sizeof(T));
  const int64_t ahead_bytes = std::max<int64_t>(1, (2048 + row_bytes - 1) / row_bytes) * row_bytes;
  // A dx that large is written with streaming stores (gathered rows), unless many rows would be
  // copies of the row above (3-D k2s2: 1 in 2; 2-D k3s2p1: 1 in 112). A streamed row has left
  // the cache, or is still on its way to memory, so while streaming such rows are gathered again
  // (copying one waited on memory: 3-D k2s2 backward 7x slower than plain stores); when they
  // are many, that costs more than streaming saves (1.3x at 1 in 2).
  const int64_t copies = std::count(same_as_above.begin(), same_as_above.end(), char(1));
  const bool stream = stream_output(dx_bytes) && 8 * copies <= H;
  for_each_raster(p.planes(), D, H, kRowsPerThread, [&](int64_t pl, int64_t d, int64_t h,
                                                        bool first) {
    T* dxr = dx + ((pl * D + d) * H + h) * W;  // (W,) this input row
    // the row above, written by this thread
    if (!stream && !first && h > 0 && same_as_above[h]) {
      prefetch_lines<1>(dx, dx_bytes, (dxr - dx) * int64_t(sizeof(T)) + ahead_bytes, row_bytes);
      std::copy(dxr - W, dxr, dxr);
      return;
    }
    const int64_t e0 = src.start[d * H + h], n = src.start[d * H + h + 1] - e0;
    if (n == 0) {  // no output reads this row
      std::fill(dxr, dxr + W, T(0));
      return;
    }
    RowScratch<T, kRowValues> buf(len + kZeros);
    if (left <= kZeros && len - left - OW <= kZeros) {  // fixed-size stores, no memset call
      for (int64_t i = 0; i < kZeros; ++i) buf.data[i] = T(0);
      for (int64_t i = 0; i < kZeros; ++i) buf.data[left + OW + i] = T(0);
    } else {
      std::fill(buf.data, buf.data + left, T(0));
      std::fill(buf.data + left + OW, buf.data + len, T(0));
    }
    T* acc = buf.data + left;  // (OW,) Σ of the scaled grad rows reading this row
    const T* dyp = dy + pl * p.out_plane();
    RowScratch<const T*, kWindowRows> grad_rows(n);  // the grad rows reading this row
    for (int64_t i = 0; i < n; ++i) grad_rows.data[i] = dyp + src.offset[e0 + i];
    k.combine_rows(OW, n, grad_rows.data, src.factor.data() + e0, fw.data(), acc);
    if (p.adaptive)
      spread_adaptive(plan.ww, acc, W, dxr);
    else
      k.gather_phases(W, g.s, g.kt, g.ntaps.data(), g.offs.data(), buf.data, dxr, stream);
  });
}

template void avg_pool_backward_planes<float>(const PoolParams&, const AvgOptions&, float*,
                                              const float*);
template void avg_pool_backward_planes<double>(const PoolParams&, const AvgOptions&, double*,
                                               const double*);

}  // namespace cnnfast::cpu
