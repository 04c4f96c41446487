// conv2d_depthwise.cu — depthwise conv2d on CUDA (groups == C, w (K = C·M, 1, R, S)): direct
// kernels. Forward: 4 outputs along a row per thread from a register window of x (unit stride
// and dilation along w, S <= 7), else one thread per output element, its taps read through the
// cache (a warp covers consecutive q of one channel: the weight reads are broadcasts). Backward-data: one
// thread per input element over the M output channels and the taps of its stride phase.
// Backward-weight: per channel k, blocks over slices of the N·P·Q pixels, each thread summing
// up to kTapGroup taps in registers, then a block reduction and one atomic add per tap.
#include <numeric>

#include "cuda/conv2d_common.cuh"
#include "cuda/conv2d_gemm_tile.cuh"

namespace cnnfast::cuda {
namespace {

using gemm::FastDiv;

struct Geo {  // one batch chunk; int32 offsets (images_per_launch keeps them in range)
  FastDiv Q, PQ, KPQ, W, HW, CHW;
  int C, H, K, M, P, R, S, RS, sh, sw, pt, pl, dh, dw;
};

Geo geo_of(const Conv2dParams& p) {
  return {FastDiv(p.Q), FastDiv(p.P * p.Q), FastDiv(p.K * p.P * p.Q), FastDiv(p.W),
          FastDiv(p.H * p.W), FastDiv(p.C * p.H * p.W), int(p.C), int(p.H), int(p.K),
          int(p.K / p.C), int(p.P), int(p.R), int(p.S), int(p.R * p.S), int(p.stride_h),
          int(p.stride_w), int(p.pad_top), int(p.pad_left), int(p.dil_h), int(p.dil_w)};
}

// y[i], i = (n, k, p, q)
struct Fwd {
  float* y;
  const float* x;
  const float* w;
  const float* b;
  Geo g;
  bool relu;
  CNNFAST_HD void operator()(int i) const {
    const int n = g.KPQ.div(i), kpq = i - n * g.KPQ.d, k = g.PQ.div(kpq), pq = kpq - k * g.PQ.d;
    const int p = g.Q.div(pq), q = pq - p * g.Q.d;
    const int c = k / g.M, W = g.W.d;
    const float* xc = x + n * g.CHW.d + c * g.HW.d;
    const float* wk = w + k * g.RS;
    float sum = b ? b[k] : 0.f;
    for (int r = 0; r < g.R; ++r) {
      const int h = p * g.sh - g.pt + r * g.dh;
      if (unsigned(h) >= unsigned(g.H)) continue;
      for (int s = 0; s < g.S; ++s) {
        const int wc = q * g.sw - g.pl + s * g.dw;
        if (unsigned(wc) < unsigned(W)) sum = fmaf(xc[h * W + wc], wk[r * g.S + s], sum);
      }
    }
    if (relu) sum = sum < 0.f ? 0.f : sum;
    y[i] = sum;
  }
};

// Unit stride and dilation along w, S <= kRowTaps: thread i = (n, k, p, qb) computes the
// kRowOut outputs q = kRowOut·qb + j from one register window of x per row (kRowOut + S − 1
// loads instead of kRowOut·S) and one weight load per tap.
constexpr int kRowOut = 4, kRowTaps = 7;
struct FwdRow {
  float* y;
  const float* x;
  const float* w;
  const float* b;
  Geo g;
  FastDiv QB, PQB, KPQB;  // QB = ceil(Q / kRowOut)
  bool relu;
  CNNFAST_HD void operator()(int i) const {
    const int n = KPQB.div(i), kpqb = i - n * KPQB.d, k = PQB.div(kpqb), pqb = kpqb - k * PQB.d;
    const int p = QB.div(pqb), q0 = (pqb - p * QB.d) * kRowOut;
    const int c = k / g.M, W = g.W.d, S = g.S, w0 = q0 - g.pl;
    const float* xc = x + n * g.CHW.d + c * g.HW.d;
    const float* wk = w + k * g.RS;
    const float b0 = b ? b[k] : 0.f;
    float acc[kRowOut];
CNNFAST_UNROLL
    for (int j = 0; j < kRowOut; ++j) acc[j] = b0;
    for (int r = 0; r < g.R; ++r) {
      const int h = p * g.sh - g.pt + r * g.dh;
      if (unsigned(h) >= unsigned(g.H)) continue;
      const float* row = xc + h * W;
      float win[kRowOut + kRowTaps - 1];
CNNFAST_UNROLL
      for (int e = 0; e < kRowOut + kRowTaps - 1; ++e)
        win[e] = (e < kRowOut + S - 1 && unsigned(w0 + e) < unsigned(W)) ? row[w0 + e] : 0.f;
CNNFAST_UNROLL
      for (int s = 0; s < kRowTaps; ++s) {
        if (s >= S) break;
        const float wt = wk[r * S + s];
CNNFAST_UNROLL
        for (int j = 0; j < kRowOut; ++j) acc[j] = fmaf(win[j + s], wt, acc[j]);
      }
    }
    float* yo = y + (n * g.K + k) * g.PQ.d + p * g.Q.d + q0;
CNNFAST_UNROLL
    for (int j = 0; j < kRowOut; ++j)
      if (q0 + j < g.Q.d) yo[j] = relu ? (acc[j] < 0.f ? 0.f : acc[j]) : acc[j];
  }
};

// first tap r of coordinate v's stride phase (sh | v + pad − r·dil); R when none
CNNFAST_HD inline int first_tap(int v, int pad, int dil, int stride, int R) {
  for (int r = 0; r < stride && r < R; ++r)
    if ((v + pad - r * dil) % stride == 0) return r;
  return R;
}

// dx[i], i = (n, c, h, w): Σ_m Σ_{r, s} dy[n, c·M + m, p, q]·w[c·M + m, r, s]
struct Data {
  float* dx;
  const float* dy;
  const float* w;
  Geo g;
  int step_r, step_s, doh, dow;
  CNNFAST_HD void operator()(int i) const {
    const int n = g.CHW.div(i), chw = i - n * g.CHW.d, c = g.HW.div(chw), hw = chw - c * g.HW.d;
    const int h = g.W.div(hw), wc = hw - h * g.W.d;
    const int r0 = first_tap(h, g.pt, g.dh, g.sh, g.R), s0 = first_tap(wc, g.pl, g.dw, g.sw, g.S);
    const int Q = g.Q.d, PQ = g.PQ.d;
    float sum = 0.f;
    for (int m = 0; m < g.M; ++m) {
      const int k = c * g.M + m;
      const float* dyk = dy + n * g.KPQ.d + k * PQ;
      const float* wk = w + k * g.RS;
      int p = (h + g.pt - r0 * g.dh) / g.sh;
      for (int r = r0; r < g.R && p >= 0; r += step_r, p -= doh) {
        if (p >= g.P) continue;
        int q = (wc + g.pl - s0 * g.dw) / g.sw;
        for (int s = s0; s < g.S && q >= 0; s += step_s, q -= dow)
          if (q < Q) sum = fmaf(dyk[p * Q + q], wk[r * g.S + s], sum);
      }
    }
    dx[i] = sum;
  }
};

// Pixel i = (n, p, q) of channel k (c = k / M) and tap t = (r, s): dy[n, k, p, q] and the
// x[n, c, p·sh − pt + r·dh, q·sw − pl + s·dw] it multiplies (0 outside).
struct WgtTerm {
  const float* dy;
  const float* x;
  Geo g;
  struct Pixel {
    int dy_off, x_off, h, w;  // x_off: of the window origin (h, w), which may lie outside
  };
  CNNFAST_HD Pixel pixel(int k, int i) const {
    const int n = g.PQ.div(i), pq = i - n * g.PQ.d, p = g.Q.div(pq), q = pq - p * g.Q.d;
    const int h = p * g.sh - g.pt, w = q * g.sw - g.pl;
    return {n * g.KPQ.d + k * g.PQ.d + pq, n * g.CHW.d + (k / g.M) * g.HW.d + h * g.W.d + w, h,
            w};
  }
  CNNFAST_HD float x_at(const Pixel& px, int th, int tw) const {
    const int h = px.h + th, w = px.w + tw;
    if (unsigned(h) >= unsigned(g.H) || unsigned(w) >= unsigned(g.W.d)) return 0.f;
    return x[px.x_off + th * g.W.d + tw];
  }
};

constexpr int kTapGroup = 9, kWgtThreads = 256;

// blockIdx.x = channel k, blockIdx.y = pixel slice; taps [t0, t0 + kTapGroup). Each thread
// decodes a pixel once and reads its dy once for all the group's taps.
__global__ void __launch_bounds__(kWgtThreads) wgt_kernel(float* dw, WgtTerm term, int pixels,
                                                          int slice, int t0) {
  __shared__ float partial[kWgtThreads / 32][kTapGroup];
  const int k = blockIdx.x, begin = blockIdx.y * slice;
  const int end = min(pixels, begin + slice);
  const int taps = min(kTapGroup, term.g.RS - t0);
  int th[kTapGroup], tw[kTapGroup];
#pragma unroll
  for (int t = 0; t < kTapGroup; ++t) {
    const int r = (t0 + t) / term.g.S, s = (t0 + t) - r * term.g.S;
    th[t] = t < taps ? r * term.g.dh : -(1 << 29);  // past the last tap: never inside
    tw[t] = s * term.g.dw;
  }
  float acc[kTapGroup] = {};
  for (int i = begin + threadIdx.x; i < end; i += kWgtThreads) {
    const WgtTerm::Pixel px = term.pixel(k, i);
    const float d = term.dy[px.dy_off];
#pragma unroll
    for (int t = 0; t < kTapGroup; ++t) acc[t] = fmaf(d, term.x_at(px, th[t], tw[t]), acc[t]);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int t = 0; t < kTapGroup; ++t) {
    float v = acc[t];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    if (lane == 0) partial[warp][t] = v;
  }
  __syncthreads();
  if (threadIdx.x < taps) {
    float v = 0.f;
    for (int wi = 0; wi < kWgtThreads / 32; ++wi) v += partial[wi][threadIdx.x];
    atomicAdd(&dw[k * term.g.RS + t0 + threadIdx.x], v);
  }
}

}  // namespace

void depthwise_forward(bool on_host, const Conv2dParams& p, float* y, const float* x,
                       const float* w, const float* b, bool relu) {
  if (p.N == 0 || p.K == 0 || p.P == 0 || p.Q == 0) return;
  for_chunks(p, images_per_launch(p), [&](const Conv2dParams& s, int64_t n0) {
    float* ys = y + n0 * p.K * p.P * p.Q;
    const float* xs = x + n0 * p.C * p.H * p.W;
    if (p.stride_w == 1 && p.dil_w == 1 && p.S <= kRowTaps) {
      const int64_t qb = (p.Q + kRowOut - 1) / kRowOut;
      const FwdRow body{ys, xs, w, b, geo_of(s), FastDiv(qb), FastDiv(p.P * qb),
                        FastDiv(p.K * p.P * qb), relu};
      for_each_index(on_host, s.N * p.K * p.P * qb, body,
                     "launch of conv2d forward (depthwise rows)");
      return;
    }
    const Fwd body{ys, xs, w, b, geo_of(s), relu};
    for_each_index(on_host, s.N * p.K * p.P * p.Q, body, "launch of conv2d forward (depthwise)");
  });
}

void depthwise_backward_data(bool on_host, const Conv2dParams& p, float* dx, const float* dy,
                             const float* w) {
  if (p.N == 0 || p.C == 0 || p.H == 0 || p.W == 0) return;
  for_chunks(p, images_per_launch(p), [&](const Conv2dParams& s, int64_t n0) {
    const int64_t step_r = p.stride_h / std::gcd(p.stride_h, p.dil_h);
    const int64_t step_s = p.stride_w / std::gcd(p.stride_w, p.dil_w);
    const Data body{dx + n0 * p.C * p.H * p.W, dy + n0 * p.K * p.P * p.Q, w, geo_of(s),
                    int(step_r), int(step_s), int(step_r * p.dil_h / p.stride_h),
                    int(step_s * p.dil_w / p.stride_w)};
    for_each_index(on_host, s.N * p.C * p.H * p.W, body,
                   "launch of conv2d backward-data (depthwise)");
  });
}

void depthwise_backward_weight(bool on_host, const Conv2dParams& p, float* dw, const float* dy,
                               const float* x) {
  if (p.N == 0 || p.K == 0 || p.P == 0 || p.Q == 0) return;
  const int RS = int(p.R * p.S);
  for_chunks(p, images_per_launch(p), [&](const Conv2dParams& s, int64_t n0) {
    const WgtTerm term{dy + n0 * p.K * p.P * p.Q, x + n0 * p.C * p.H * p.W, geo_of(s)};
    const int64_t pixels = s.N * p.P * p.Q;
    if (on_host) {
      for (int k = 0; k < int(p.K); ++k)
        for (int t = 0; t < RS; ++t) {
          float sum = 0.f;
          for (int i = 0; i < int(pixels); ++i) {
            const WgtTerm::Pixel px = term.pixel(k, i);
            const int r = t / int(p.S), s = t - r * int(p.S);
            sum += term.dy[px.dy_off] * term.x_at(px, r * int(p.dil_h), s * int(p.dil_w));
          }
          dw[k * RS + t] += sum;
        }
      return;
    }
    // ~4 blocks per SM, each over at least 2048 pixels
    const int64_t want = std::max<int64_t>(1, (4 * int64_t(multiprocessors()) + p.K - 1) / p.K);
    const int64_t slices = std::max<int64_t>(1, std::min<int64_t>(want, pixels / 2048));
    const int64_t slice = (pixels + slices - 1) / slices;
    if (p.K > INT32_MAX || slices > 65535)
      throw std::invalid_argument("conv2d backward-weight (depthwise): too many channels");
    for (int t0 = 0; t0 < RS; t0 += kTapGroup) {
      wgt_kernel<<<dim3(unsigned(p.K), unsigned(slices)), kWgtThreads>>>(dw, term, int(pixels),
                                                                         int(slice), t0);
      CNNFAST_CUDA_CHECK_LAUNCH("conv2d backward-weight (depthwise)");
    }
  });
}

}  // namespace cnnfast::cuda
