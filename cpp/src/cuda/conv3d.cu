// conv3d.cu — conv3d forward, backward-data and backward-weight on CUDA, on the implicit-GEMM
// tiles of conv2d_gemm_tile.cuh. Depth slices are grouped by the kernel-depth taps that land
// inside the tensor for them (the interior slices share all taps; border slices lose some), and
// each group is one 2-D-style GEMM whose depth index runs only over those taps: the gathers keep
// conv2d's (h, w) bounds checks and no tap multiplies padding. Slice i of a group has depth
// coordinates that are linear in i (`Slices`; the planning is in conv3d_depth_taps.cuh).
//   forward, output slices:   rows = N·(slices)·OH·OW, cols = K/G, depth = C/G·(taps)·KH·KW
//   backward-weight:          rows = K/G, cols = C/G·(taps)·KH·KW, depth = N·(slices)·OH·OW
//   backward-data, input slices of one depth phase and one (h, w) stride phase: rows = their
//     pixels, cols = C/G, depth = K/G·(depth taps)·(row taps)·(column taps)
// Layouts: x (N, C, D, H, W), w (K, C/G, KD, KH, KW), y (N, K, OD, OH, OW). Batches are split to
// keep each launch's tensors under 2^30 elements (int32 offsets).
#include <algorithm>
#include <vector>

#include "cnnfast/conv_family.h"
#include "cuda/conv2d_common.cuh"
#include "cuda/conv2d_gemm_tile.cuh"
#include "cuda/conv3d_depth_taps.cuh"

namespace cnnfast::cuda {
namespace {

using gemm::FastDiv;
using gemm::Point;

// ---- forward, output slice od -------------------------------------------------------------------
struct Fwd3Image {  // A(m = (n, i, p, q), k = (c, jt, r, s)) = x[n, g·Cg + c, d(i) + jt·dd, h, w]
  static constexpr bool kFixedFast = true;
  const float* src;
  int H, W;
  FastDiv SPQ, PQ, Q, TRS, RS, S;  // SPQ: slices·OH·OW
  int CDHW, CgDHW, DHW, HW, d0HW, dstepHW, tstep, sh, sw, pt, pl, dh, dw;
  CNNFAST_HD Point fixed(int g, int m) const {
    const int n = SPQ.div(m), ipq = m - n * SPQ.d, i = PQ.div(ipq), pq = ipq - i * PQ.d;
    const int p = Q.div(pq), q = pq - p * Q.d, h = p * sh - pt, w = q * sw - pl;
    return {n * CDHW + g * CgDHW + d0HW + i * dstepHW + h * W + w, h, w};
  }
  CNNFAST_HD Point vary(int, int k) const {
    const int c = TRS.div(k), trs = k - c * TRS.d, jt = RS.div(trs), rs = trs - jt * RS.d;
    const int r = S.div(rs), s = rs - r * S.d, h = r * dh, w = s * dw;
    return {c * DHW + jt * tstep + h * W + w, h, w};
  }
};
struct Fwd3Weight {  // B(k = (c, jt, rs), j) = w[g·Kg + j, c, t0 + jt, rs]
  static constexpr bool kFixedFast = false;
  const float* src;
  int H = 1, W = 1;
  FastDiv TRS;
  int Kg, CgKDRS, KDRS, t0RS;
  CNNFAST_HD Point fixed(int g, int j) const { return {(g * Kg + j) * CgKDRS + t0RS, 0, 0}; }
  CNNFAST_HD Point vary(int, int k) const {
    const int c = TRS.div(k);
    return {c * KDRS + (k - c * TRS.d), 0, 0};
  }
};
struct Fwd3Store {  // y[n, g·Kg + j, od(i), p, q] = act(v + b), or += v (split sums: y zeroed
  float* y;          // before, bias and activation after)
  const float* b;
  FastDiv SPQ, PQ;
  int K, Kg, ODPQ, od0PQ;
  bool relu, accumulate;
  CNNFAST_HD void operator()(int g, int m, int j, float v) const {
    const int n = SPQ.div(m), ipq = m - n * SPQ.d, k = g * Kg + j;
    float* out = &y[(n * K + k) * ODPQ + od0PQ + ipq];  // a group's output slices are consecutive
    if (accumulate) return atomic_add(out, v);
    if (b) v += b[k];
    if (relu) v = v < 0.f ? 0.f : v;
    *out = v;
  }
};

// ---- backward-weight, output slice od -----------------------------------------------------------
struct Wgt3GradOut {  // A(j, k = (n, i, pq)) = dy[n, g·Kg + j, od(i), pq]
  static constexpr bool kFixedFast = false;
  const float* src;
  int H = 1, W = 1;
  FastDiv SPQ;
  int Kg, ODPQ, od0PQ, KODPQ;
  CNNFAST_HD Point fixed(int g, int j) const { return {(g * Kg + j) * ODPQ + od0PQ, 0, 0}; }
  CNNFAST_HD Point vary(int, int k) const {
    const int n = SPQ.div(k);
    return {n * KODPQ + (k - n * SPQ.d), 0, 0};  // output slices of a group are consecutive
  }
};
struct Wgt3Image {  // B(k = (n, i, p, q), col = (c, jt, r, s)) = x[n, g·Cg + c, d(i) + jt·dd, h, w]
  static constexpr bool kFixedFast = false;
  const float* src;
  int H, W;
  FastDiv SPQ, PQ, Q, TRS, RS, S;
  int CDHW, CgDHW, DHW, HW, d0HW, dstepHW, tstep, sh, sw, pt, pl, dh, dw;
  CNNFAST_HD Point fixed(int g, int col) const {
    const int c = TRS.div(col), trs = col - c * TRS.d, jt = RS.div(trs), rs = trs - jt * RS.d;
    const int r = S.div(rs), s = rs - r * S.d, h = r * dh, w = s * dw;
    return {g * CgDHW + c * DHW + d0HW + jt * tstep + h * W + w, h, w};
  }
  CNNFAST_HD Point vary(int, int k) const {
    const int n = SPQ.div(k), ipq = k - n * SPQ.d, i = PQ.div(ipq), pq = ipq - i * PQ.d;
    const int p = Q.div(pq), q = pq - p * Q.d, h = p * sh - pt, w = q * sw - pl;
    return {n * CDHW + i * dstepHW + h * W + w, h, w};
  }
};
struct Wgt3Store {  // dw[g·Kg + j, c, t0 + jt, rs] += v
  float* dw;
  FastDiv TRS;
  int Kg, CgKDRS, KDRS, t0RS;
  CNNFAST_HD void operator()(int g, int j, int col, float v) const {
    const int c = TRS.div(col);
    atomic_add(&dw[(g * Kg + j) * CgKDRS + c * KDRS + t0RS + (col - c * TRS.d)], v);
  }
};

// ---- backward-data, input slice id, (h, w) phase (ph, pw) ------------------------------------------
struct Data3Image {  // A(m = (n, i, a, b), k = (j, it, ir, is)) = dy[n, g·Kg + j, od0(i) − it·dod, ...]
  static constexpr bool kFixedFast = true;
  const float* src;
  int H, W;  // OH, OW
  FastDiv SAB, AB, B, T3, T2, TS;
  int KODPQ, KgODPQ, ODPQ, PQ, od0PQ, dod, oh0, doh, ow0, dow;
  CNNFAST_HD Point fixed(int g, int m) const {
    const int n = SAB.div(m), iab = m - n * SAB.d, i = AB.div(iab), ab = iab - i * AB.d;
    const int a = B.div(ab), b = ab - a * B.d;
    return {n * KODPQ + g * KgODPQ + od0PQ + i * PQ + a * W + b, a, b};
  }
  CNNFAST_HD Point vary(int, int k) const {
    const int j = T3.div(k), t3 = k - j * T3.d, it = T2.div(t3), t2 = t3 - it * T2.d;
    const int ir = TS.div(t2), is = t2 - ir * TS.d;
    const int oh = oh0 - ir * doh, ow = ow0 - is * dow;
    return {j * ODPQ - it * dod * PQ + oh * W + ow, oh, ow};
  }
};
struct Data3Weight {  // B(k = (j, it, ir, is), ci) = w[g·Kg + j, ci, t, r, s]
  static constexpr bool kFixedFast = true;
  const float* src;
  int H = 1, W = 1;
  FastDiv T3, T2, TS;
  int KgCgKDRS, CgKDRS, KDRS, RS, S, t0, step_t, r0, step_r, s0, step_s;
  CNNFAST_HD Point fixed(int g, int ci) const { return {g * KgCgKDRS + ci * KDRS, 0, 0}; }
  CNNFAST_HD Point vary(int, int k) const {
    const int j = T3.div(k), t3 = k - j * T3.d, it = T2.div(t3), t2 = t3 - it * T2.d;
    const int ir = TS.div(t2), is = t2 - ir * TS.d;
    return {j * CgKDRS + (t0 + it * step_t) * RS + (r0 + ir * step_r) * S + s0 + is * step_s, 0,
            0};
  }
};
struct Data3Store {  // dx[n, g·Cg + ci, id(i), ph + sh·a, pw + sw·b] = v (+= v: split sums)
  float* dx;
  FastDiv SAB, AB, B;
  int CDHW, CgDHW, DHW, id0HW, idstepHW, W, ph, pw, sh, sw;
  bool accumulate;
  CNNFAST_HD void operator()(int g, int m, int ci, float v) const {
    const int n = SAB.div(m), iab = m - n * SAB.d, i = AB.div(iab), ab = iab - i * AB.d;
    const int a = B.div(ab), b = ab - a * B.d;
    float* out = &dx[n * CDHW + g * CgDHW + ci * DHW + id0HW + i * idstepHW +
                     (ph + sh * a) * W + pw + sw * b];
    if (accumulate) atomic_add(out, v);
    else *out = v;
  }
};

int64_t images_per_launch(const Conv3dParams& p) {
  const int64_t limit = int64_t(1) << 30;
  const int64_t per = std::max({p.C * p.in_volume(), p.K * p.out_volume(), int64_t(1)});
  if (per >= limit || p.K * p.Cg() * p.taps() >= limit)
    throw std::invalid_argument("conv3d (CUDA): one image's input, output or the weight has "
                                "2^30 elements or more (the kernels' offsets are 32-bit)");
  if (p.D + p.pad_front + p.pad_back + p.stride_d >= limit ||
      p.H + p.pad_top + p.pad_bottom + p.stride_h >= limit ||
      p.W + p.pad_left + p.pad_right + p.stride_w >= limit)
    throw std::invalid_argument("conv3d (CUDA): padded input extent + stride reaches 2^30 (the "
                                "kernels' coordinates are 32-bit)");
  return std::max<int64_t>(1, std::min(p.N, limit / per));
}

template <class Fn>
void for_chunks(const Conv3dParams& p, Fn&& fn) {
  const int64_t per = images_per_launch(p);
  for (int64_t n0 = 0; n0 < p.N; n0 += per) {
    Conv3dParams sub = p;
    sub.N = std::min(per, p.N - n0);
    fn(sub, n0);
  }
}

// Few output rows (small volumes): the GEMMs then leave most SMs idle, so each sum is split over
// blocks that add into a zeroed y, and bias and activation follow as their own passes.
void forward(const Exec& e, const Conv3dParams& p, float* y, const float* x, const float* w,
             const float* b, bool relu) {
  if (p.N == 0 || p.K == 0 || p.out_volume() == 0) return;
  const int64_t Cg = p.Cg(), Kg = p.Kg(), RS = p.KH * p.KW, PQ = p.OH * p.OW;
  const int64_t HW = p.H * p.W, DHW = p.D * HW;
  const std::vector<TapRun> runs = forward_runs(p);
  const int64_t per = images_per_launch(p), total = p.N * p.K * p.out_volume();
  int64_t most_rows = 0;
  for (const TapRun& run : runs) most_rows = std::max(most_rows, run.s.count * PQ);
  const bool split = (std::min(per, p.N) * most_rows + 127) / 128 *
                         ((Kg + 127) / 128) * p.groups < e.sms;
  if (split) {
    if (e.on_host) std::fill(y, y + total, 0.f);
    else fill_bytes(y, 0, total * int64_t(sizeof(float)));
  }
  for_chunks(p, [&](const Conv3dParams& s, int64_t n0) {
    for (const TapRun& run : runs) {
      const DepthTaps& t = run.taps;
      const int64_t TRS = std::max<int64_t>(1, t.count * RS), SPQ = run.s.count * PQ;
      if (split && t.count == 0) continue;  // stays 0 before the bias
      const Fwd3Image A{x + n0 * p.C * DHW, int(p.H), int(p.W), FastDiv(SPQ), FastDiv(PQ),
                        FastDiv(p.OW), FastDiv(TRS), FastDiv(RS), FastDiv(p.KW), int(p.C * DHW),
                        int(Cg * DHW), int(DHW), int(HW), int(run.s.src0 * HW),
                        int(run.s.src_step * HW), int(t.delta * HW), int(p.stride_h),
                        int(p.stride_w), int(p.pad_top), int(p.pad_left), int(p.dil_h),
                        int(p.dil_w)};
      const Fwd3Weight B{w, 1, 1, FastDiv(TRS), int(Kg), int(Cg * p.taps()), int(p.taps()),
                         int(t.first * RS)};
      const Fwd3Store St{y + n0 * p.K * p.out_volume(), b, FastDiv(SPQ), FastDiv(PQ), int(p.K),
                         int(Kg), int(p.out_volume()), int(run.s.dst0 * PQ), relu, split};
      const int64_t rows = s.N * SPQ;
      const int tn = gemm::lanes_for(Kg), tm = gemm::rows_lanes_for(rows, Kg, tn, p.groups, e.sms);
      gemm::run_tiled(e.on_host, "launch of conv3d forward (implicit GEMM)", tm, tn, p.groups,
                      rows, Kg, Cg * t.count * RS, split ? 0 : 1, A, B, St, e.sms);
    }
  });
  if (!split) return;
  if (e.on_host) {  // the same passes on the host (emulation)
    for (int64_t i = 0; i < total; ++i) {
      float v = y[i] + (b ? b[(i / p.out_volume()) % p.K] : 0.f);
      y[i] = relu ? (v > 0.f ? v : 0.f * v) : v;
    }
    return;
  }
  if (b) bias_add(p.N, p.K, p.out_volume(), y, b);
  if (relu) relu_forward(total, y, y);
}

void backward_weight(const Exec& e, const Conv3dParams& p, float* dw, const float* dy,
                     const float* x) {
  if (p.N == 0 || p.K == 0 || p.out_volume() == 0) return;
  const int64_t Cg = p.Cg(), Kg = p.Kg(), RS = p.KH * p.KW, PQ = p.OH * p.OW;
  const int64_t HW = p.H * p.W, DHW = p.D * HW;
  const std::vector<TapRun> runs = forward_runs(p);
  for_chunks(p, [&](const Conv3dParams& s, int64_t n0) {
    for (const TapRun& run : runs) {
      const DepthTaps& t = run.taps;
      if (t.count == 0) continue;
      const int64_t TRS = t.count * RS, cols = Cg * TRS, SPQ = run.s.count * PQ;
      const Wgt3GradOut A{dy + n0 * p.K * p.out_volume(), 1, 1, FastDiv(SPQ), int(Kg),
                          int(p.out_volume()), int(run.s.dst0 * PQ),
                          int(p.K * p.out_volume())};
      const Wgt3Image B{x + n0 * p.C * DHW, int(p.H), int(p.W), FastDiv(SPQ), FastDiv(PQ),
                        FastDiv(p.OW), FastDiv(TRS), FastDiv(RS), FastDiv(p.KW), int(p.C * DHW),
                        int(Cg * DHW), int(DHW), int(HW), int(run.s.src0 * HW),
                        int(run.s.src_step * HW), int(t.delta * HW), int(p.stride_h),
                        int(p.stride_w), int(p.pad_top), int(p.pad_left), int(p.dil_h),
                        int(p.dil_w)};
      const Wgt3Store St{dw, FastDiv(TRS), int(Kg), int(Cg * p.taps()), int(p.taps()),
                         int(t.first * RS)};
      gemm::run_tiled(e.on_host, "launch of conv3d backward-weight (implicit GEMM)",
                      gemm::lanes_for(Kg), gemm::lanes_for(cols), p.groups, Kg, cols, s.N * SPQ,
                      0, A, B, St, e.sms);
    }
  });
}

void backward_data(const Exec& e, const Conv3dParams& p, float* dx, const float* dy,
                   const float* w) {
  if (p.N == 0 || p.C == 0 || p.in_volume() == 0) return;
  const int64_t Cg = p.Cg(), Kg = p.Kg(), RS = p.KH * p.KW, PQ = p.OH * p.OW;
  const int64_t HW = p.H * p.W, DHW = p.D * HW;
  const std::vector<TapRun> runs = data_runs(p);
  // Small volumes: split the sums (as the forward) over blocks adding into a zeroed dx.
  int64_t most = 0;
  for (const TapRun& run : runs) most = std::max<int64_t>(most, run.s.count);
  const int64_t most_rows = std::min(images_per_launch(p), p.N) * most *
                            ((p.H + p.stride_h - 1) / p.stride_h) *
                            ((p.W + p.stride_w - 1) / p.stride_w);
  const bool split = (most_rows + 127) / 128 * ((Cg + 127) / 128) * p.groups < e.sms;
  if (split) {
    const int64_t total = p.N * p.C * DHW;
    if (e.on_host) std::fill(dx, dx + total, 0.f);
    else fill_bytes(dx, 0, total * int64_t(sizeof(float)));
  }
  for_chunks(p, [&](const Conv3dParams& s, int64_t n0) {
    for (const TapRun& run : runs) {
      const DepthTaps& t = run.taps;
      if (split && t.count == 0) continue;  // stays 0
      for (int64_t ph = 0; ph < std::min(p.stride_h, p.H); ++ph)
        for (int64_t pw = 0; pw < std::min(p.stride_w, p.W); ++pw) {
          const PhaseTaps th = phase_taps(ph, p.stride_h, p.pad_top, p.dil_h, p.KH);
          const PhaseTaps tw = phase_taps(pw, p.stride_w, p.pad_left, p.dil_w, p.KW);
          const int64_t Ha = (p.H - ph + p.stride_h - 1) / p.stride_h;
          const int64_t Wa = (p.W - pw + p.stride_w - 1) / p.stride_w;
          const int64_t T2 = int64_t(th.n) * tw.n, T3 = int64_t(t.count) * T2;
          const int64_t SAB = run.s.count * Ha * Wa;
          const FastDiv f3(std::max<int64_t>(T3, 1)), f2(std::max<int64_t>(T2, 1)),
              fs(std::max(tw.n, 1));
          const Data3Image A{dy + n0 * p.K * p.out_volume(), int(p.OH), int(p.OW),
                             FastDiv(SAB), FastDiv(Ha * Wa), FastDiv(Wa), f3, f2, fs,
                             int(p.K * p.out_volume()), int(Kg * p.out_volume()),
                             int(p.out_volume()), int(PQ), int(run.s.src0 * PQ), t.delta,
                             th.o0, th.delta, tw.o0, tw.delta};
          const Data3Weight B{w, 1, 1, f3, f2, fs, int(Kg * Cg * p.taps()),
                              int(Cg * p.taps()), int(p.taps()), int(RS), int(p.KW), t.first,
                              t.step, th.r0, th.step, tw.r0, tw.step};
          const Data3Store St{dx + n0 * p.C * DHW, FastDiv(SAB), FastDiv(Ha * Wa), FastDiv(Wa),
                              int(p.C * DHW), int(Cg * DHW), int(DHW), int(run.s.dst0 * HW),
                              int(run.s.dst_step * HW), int(p.W), int(ph), int(pw),
                              int(p.stride_h), int(p.stride_w), split};
          const int64_t rows = s.N * SAB;
          const int tn = gemm::lanes_for(Cg),
                    tm = gemm::rows_lanes_for(rows, Cg, tn, p.groups, e.sms);
          if (split && T3 == 0) continue;
          gemm::run_tiled(e.on_host, "launch of conv3d backward-data (implicit GEMM)", tm, tn,
                          p.groups, rows, Cg, Kg * T3, split ? 0 : 1, A, B, St,
                          e.sms);  // T3 == 0: zeros
        }
    }
  });
}

}  // namespace

void conv3d_forward(const Conv3dParams& p, float* y, const float* x, const float* w,
                    const float* b, bool relu) {
  forward({false, multiprocessors()}, p, y, x, w, b, relu);
}
void conv3d_backward_data(const Conv3dParams& p, float* dx, const float* dy, const float* w) {
  backward_data({false, multiprocessors()}, p, dx, dy, w);
}
void conv3d_backward_weight(const Conv3dParams& p, float* dw, float* db, const float* dy,
                            const float* x) {
  if (dw) backward_weight({false, multiprocessors()}, p, dw, dy, x);
  if (db) bias_grad(p.N, p.K, p.out_volume(), db, dy);
}

namespace emulate {
void conv3d_forward(const Conv3dParams& p, float* y, const float* x, const float* w,
                    const float* b, bool relu) {
  forward({true, kEmulatedSms}, p, y, x, w, b, relu);
}
void conv3d_backward_data(const Conv3dParams& p, float* dx, const float* dy, const float* w) {
  backward_data({true, kEmulatedSms}, p, dx, dy, w);
}
void conv3d_backward_weight(const Conv3dParams& p, float* dw, const float* dy, const float* x,
                            int multiprocessors) {
  backward_weight({true, multiprocessors}, p, dw, dy, x);
}
}  // namespace emulate

}  // namespace cnnfast::cuda
