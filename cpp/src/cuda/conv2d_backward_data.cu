// conv2d_backward_data.cu — conv2d's backward-data on CUDA (dx = the adjoint of the convolution
// applied to dy) on the implicit-GEMM tiles of conv2d_gemm_tile.cuh; depthwise shapes go to
// conv2d_depthwise.cu.
//   per stride phase (h mod sh, w mod sw): a stride-1 convolution of dy with the taps that reach
//     that phase: rows = the phase's input pixels, cols = C/G, depth = K/G·(its taps) — no
//     multiply by the zeros a strided scatter holds; a phase no tap reaches is written with zeros.
//     The phase's taps of w are first packed channel-fastest (coalesced weight gathers; read in
//     place they cost a quarter more time than the forward on the same GEMM shape).
//   narrow inputs (C/G < 32, which would waste most of a 32-wide column tile): dcol = Wᵀ·dy
//     (rows = N·P·Q, cols = C/G·R·S, depth = K/G, ≤ 256 MiB of scratch per launch) gathered back
//     into dx (col2im, each dx element visiting only the taps of its phase) — or, with
//     CNNFAST_CUDA_NARROW_DATA=direct, conv2d_backward_data_direct.cu's direct sum.
#include <algorithm>
#include <memory>
#include <numeric>
#include <vector>

#include "cuda/conv2d_common.cuh"
#include "cuda/conv2d_gemm_tile.cuh"

namespace cnnfast::cuda {
namespace {

using gemm::FastDiv;
using gemm::Point;

// ---- backward-data, one stride phase (ph, pw): taps from phase_taps (conv2d_common.cuh) ------
// A(m = (n, a, b), k = (j, ir, is)) = dy[n, g·Kg + j, a + oh(ir), b + ow(is)] (0 outside)
struct DataImage {
  static constexpr bool kFixedFast = true;
  const float* src;
  int H, W;  // P, Q
  FastDiv AB, B, T, TS;  // T = nR·nS, TS = nS
  int KPQ, KgPQ, PQ, oh0, doh, ow0, dow;
  CNNFAST_HD Point fixed(int g, int m) const {
    const int n = AB.div(m), ab = m - n * AB.d, a = B.div(ab), b = ab - a * B.d;
    return {n * KPQ + g * KgPQ + a * W + b, a, b};
  }
  CNNFAST_HD Point vary(int, int k) const {
    const int j = T.div(k), t = k - j * T.d, ir = TS.div(t), is = t - ir * TS.d;
    const int oh = oh0 - ir * doh, ow = ow0 - is * dow;
    return {j * PQ + oh * W + ow, oh, ow};
  }
};
// The phase's taps of w packed with the input channel fastest, so that a warp's weight gathers
// are one contiguous run (read in place, w's (R, S) stride scattered them over many lines):
// wp[g, k = (j, ir, is), ci] = w[g·Kg + j, ci, r0 + ir·step_r, s0 + is·step_s]
struct PackPhaseWeight {
  float* wp;
  const float* w;
  FastDiv Cg, KgT, T, TS;
  int Kg, RS, S, r0, step_r, s0, step_s;
  CNNFAST_HD void operator()(int i) const {
    const int gk = Cg.div(i), ci = i - gk * Cg.d, g = KgT.div(gk), k = gk - g * KgT.d;
    const int j = T.div(k), t = k - j * T.d, ir = TS.div(t), is = t - ir * TS.d;
    wp[i] = w[((g * Kg + j) * Cg.d + ci) * RS + (r0 + ir * step_r) * S + s0 + is * step_s];
  }
};
// dx[n, g·Cg + ci, ph + sh·a, pw + sw·b] = v
struct DataStore {
  float* dx;
  FastDiv AB, B;
  int CHW, CgHW, HW, W, ph, pw, sh, sw;
  CNNFAST_HD void operator()(int g, int m, int ci, float v) const {
    const int n = AB.div(m), ab = m - n * AB.d, a = B.div(ab), b = ab - a * B.d;
    dx[n * CHW + (g * CgHW + ci * HW) + (ph + sh * a) * W + pw + sw * b] = v;
  }
};

// ---- backward-data through dcol = Wᵀ·dy -----------------------------------------------------------
// A(m = (n, pq), j) = dy[n, g·Kg + j, pq]
struct DcolGradOut {
  static constexpr bool kFixedFast = true;
  const float* src;
  int H = 1, W = 1;
  FastDiv PQ;
  int KPQ, KgPQ;
  CNNFAST_HD Point fixed(int g, int m) const {
    const int n = PQ.div(m);
    return {n * KPQ + g * KgPQ + (m - n * PQ.d), 0, 0};
  }
  CNNFAST_HD Point vary(int, int j) const { return {j * PQ.d, 0, 0}; }
};
// dcol[g·CgRS + col, m]
struct DcolStore {
  float* dcol;
  int CgRS, NPQ;
  CNNFAST_HD void operator()(int g, int m, int col, float v) const {
    dcol[(g * CgRS + col) * NPQ + m] = v;
  }
};

// dx[n, c, h, w] = Σ_{r, s} dcol[c·R·S + r·S + s, (n, p, q)] over the (p, q) that read (h, w):
// only the taps of (h, w)'s stride phase are visited (first_tap, then every step-th).
struct Col2im {
  float* dx;
  const float* dcol;
  FastDiv W, HW, CHW;
  int C, H, P, Q, R, S, sh, sw, pt, pl, dh, dw, step_r, step_s, doh, dow, NPQ;
  // first r of the phase of coordinate v (r ≡ solves sh | v + pt − r·dh); R when none
  CNNFAST_HD static int first_tap(int v, int pad, int dil, int stride, int step, int R) {
    for (int r = 0; r < step && r < R; ++r)
      if ((v + pad - r * dil) % stride == 0) return r;  // v + pad − r·dil may be < 0: % is then ≤ 0
    return R;
  }
  CNNFAST_HD void operator()(int i) const {
    const int n = CHW.div(i), chw = i - n * CHW.d, c = HW.div(chw), hw = chw - c * HW.d;
    const int h = W.div(hw), w = hw - h * W.d;
    const int r0 = first_tap(h, pt, dh, sh, step_r, R), s0 = first_tap(w, pl, dw, sw, step_s, S);
    float sum = 0.f;
    int p = (h + pt - r0 * dh) / sh;  // exact where r0 < R
    for (int r = r0; r < R; r += step_r, p -= doh) {
      if (p < 0) break;  // p only decreases
      if (p >= P) continue;
      int q = (w + pl - s0 * dw) / sw;
      for (int s = s0; s < S; s += step_s, q -= dow) {
        if (q < 0) break;
        if (q < Q) sum += dcol[((c * R + r) * S + s) * int64_t(NPQ) + (n * P + p) * Q + q];
      }
    }
    dx[i] = sum;
  }
};

void backward_data_phases(const Exec& e, const Conv2dParams& p, float* dx, const float* dy,
                          const float* w) {
  const int64_t Cg = p.Cg(), Kg = p.Kg(), RS = p.R * p.S, PQ = p.P * p.Q, HW = p.H * p.W;
  struct Phase {
    int64_t ph, pw;
    PhaseTaps th, tw;
    int64_t T, packed_at;  // taps, offset of its packed weights
  };
  std::vector<Phase> phases;
  int64_t packed = 0;
  for (int64_t ph = 0; ph < std::min(p.stride_h, p.H); ++ph)
    for (int64_t pw = 0; pw < std::min(p.stride_w, p.W); ++pw) {
      const PhaseTaps th = phase_taps(ph, p.stride_h, p.pad_top, p.dil_h, p.R);
      const PhaseTaps tw = phase_taps(pw, p.stride_w, p.pad_left, p.dil_w, p.S);
      const int64_t T = int64_t(th.n) * tw.n;
      phases.push_back({ph, pw, th, tw, T, packed});
      packed += p.groups * Kg * T * Cg;  // each tap reaches one phase: packed <= w's size
    }
  Buffer packed_w(e.on_host, std::max<int64_t>(packed, 1));
  float* const wp = packed_w.get();
  for (const Phase& f : phases)
    if (f.T > 0) {
      const PackPhaseWeight pack{wp + f.packed_at, w, FastDiv(Cg), FastDiv(Kg * f.T),
                                 FastDiv(f.T), FastDiv(f.tw.n), int(Kg), int(RS), int(p.S),
                                 f.th.r0, f.th.step, f.tw.r0, f.tw.step};
      for_each_index(e.on_host, p.groups * Kg * f.T * Cg, pack,
                     "launch of conv2d backward-data (weight packing)");
    }
  for_chunks(p, images_per_launch(p), [&](const Conv2dParams& s, int64_t n0) {
    for (const Phase& f : phases) {
      const int64_t Ha = (p.H - f.ph + p.stride_h - 1) / p.stride_h;
      const int64_t Wa = (p.W - f.pw + p.stride_w - 1) / p.stride_w;
      const FastDiv fT(std::max<int64_t>(f.T, 1)), fTS(std::max(f.tw.n, 1));
      const DataImage A{dy + n0 * p.K * PQ, int(p.P), int(p.Q), FastDiv(Ha * Wa), FastDiv(Wa),
                        fT, fTS, int(p.K * PQ), int(Kg * PQ), int(PQ), f.th.o0, f.th.delta,
                        f.tw.o0, f.tw.delta};
      const gemm::Strided<true> B{wp + f.packed_at, 1, 1, int(Kg * f.T * Cg), 1,
                                  int(Cg)};  // B(k, ci) = wp[g, k, ci]
      const DataStore St{dx + n0 * p.C * HW, FastDiv(Ha * Wa), FastDiv(Wa), int(p.C * HW),
                         int(Cg * HW), int(HW), int(p.W), int(f.ph), int(f.pw),
                         int(p.stride_h), int(p.stride_w)};
      const int64_t rows = s.N * Ha * Wa;
      const int tn = gemm::lanes_for(Cg), tm = gemm::rows_lanes_for(rows, Cg, tn, p.groups, e.sms);
      gemm::run_tiled(e.on_host, "launch of conv2d backward-data (implicit GEMM)", tm, tn,
                      p.groups, rows, Cg, Kg * f.T, 1, A, B, St);  // T == 0: zeros
    }
  });
}

void backward_data_dcol(const Exec& e, const Conv2dParams& p, float* dx, const float* dy,
                        const float* w, int64_t per) {
  const int64_t Cg = p.Cg(), Kg = p.Kg(), RS = p.R * p.S, PQ = p.P * p.Q, HW = p.H * p.W;
  const int64_t dcol_elems = std::min(per, p.N) * PQ * p.C * RS;
  Buffer dcol_buf(e.on_host, dcol_elems);
  float* const dcol = dcol_buf.get();
  for_chunks(p, per, [&](const Conv2dParams& s, int64_t n0) {
    const int64_t rows = s.N * PQ, cols = Cg * RS;
    const DcolGradOut A{dy + n0 * p.K * PQ, 1, 1, FastDiv(PQ), int(p.K * PQ), int(Kg * PQ)};
    // B(j, col) = w[g·Kg + j, col]
    const gemm::Strided<true> B{w, 1, 1, int(Kg * Cg * RS), 1, int(Cg * RS)};
    const int tn = gemm::lanes_for(cols), tm = gemm::rows_lanes_for(rows, cols, tn, p.groups, e.sms);
    gemm::run_tiled(e.on_host, "launch of conv2d backward-data (dcol GEMM)", tm, tn, p.groups,
                    rows, cols, Kg, 1, A, B, DcolStore{dcol, int(cols), int(rows)});
    const int64_t step_r = p.stride_h / std::gcd(p.stride_h, p.dil_h);
    const int64_t step_s = p.stride_w / std::gcd(p.stride_w, p.dil_w);
    const Col2im body{dx + n0 * p.C * HW, dcol, FastDiv(p.W), FastDiv(HW), FastDiv(p.C * HW),
                      int(p.C), int(p.H), int(p.P), int(p.Q), int(p.R), int(p.S),
                      int(p.stride_h), int(p.stride_w), int(p.pad_top), int(p.pad_left),
                      int(p.dil_h), int(p.dil_w), int(step_r), int(step_s),
                      int(step_r * p.dil_h / p.stride_h), int(step_s * p.dil_w / p.stride_w),
                      int(rows)};
    for_each_index(e.on_host, s.N * p.C * HW, body, "launch of conv2d backward-data (col2im)");
  });
}

void backward_data(const Exec& e, const Conv2dParams& p, float* dx, const float* dy,
                   const float* w) {
  if (p.N == 0 || p.C == 0 || p.H == 0 || p.W == 0) return;
  if (p.K == 0 || p.P == 0 || p.Q == 0) {  // nothing reaches dx
    if (e.on_host) std::fill(dx, dx + p.N * p.C * p.H * p.W, 0.f);
    else fill_bytes(dx, 0, p.N * p.C * p.H * p.W * int64_t(sizeof(float)));
    return;
  }
  // Narrow inputs waste most of a 32-wide column tile: dcol (≤ 256 MiB of scratch) instead.
  const bool narrow = p.Cg() < 32;
  if (narrow && direct_data_chosen()) return direct_backward_data(e, p, dx, dy, w);
  const int64_t dcol_per_image = p.P * p.Q * p.C * p.R * p.S;
  if (narrow && dcol_per_image < (int64_t(1) << 26)) {
    const int64_t per = std::min(images_per_launch(p, dcol_per_image),
                                 std::max<int64_t>(1, (int64_t(1) << 26) / dcol_per_image));
    backward_data_dcol(e, p, dx, dy, w, per);
    return;
  }
  backward_data_phases(e, p, dx, dy, w);
}

}  // namespace

void conv2d_backward_data(const Conv2dParams& p, float* dx, const float* dy, const float* w,
                          ConvAlgo algo) {
  const Exec e{false, multiprocessors()};
  if (const int m = winograd_tile_for(p, algo, ConvPass::data))
    return winograd_backward_data(e, m, p, dx, dy, w);
  if (depthwise_applies(p)) return depthwise_backward_data(false, p, dx, dy, w);
  backward_data(e, p, dx, dy, w);
}

namespace emulate {
void conv2d_backward_data(const Conv2dParams& p, float* dx, const float* dy, const float* w,
                          ConvAlgo algo) {
  const Exec e{true, kEmulatedSms};
  if (const int m = winograd_tile_for(p, algo, ConvPass::data))
    return winograd_backward_data(e, m, p, dx, dy, w);
  if (depthwise_applies(p)) return depthwise_backward_data(true, p, dx, dy, w);
  backward_data(e, p, dx, dy, w);
}
}  // namespace emulate

}  // namespace cnnfast::cuda
