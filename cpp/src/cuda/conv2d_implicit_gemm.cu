// conv2d_implicit_gemm.cu — conv2d forward and backward-weight on CUDA as implicit GEMMs (no
// im2col buffer) on the tiled block program of conv2d_gemm_tile.cuh, one GEMM per group
// (blockIdx.z); backward-data is in conv2d_backward_data.cu, depthwise convolutions go to
// conv2d_depthwise.cu, algo='winograd*' to conv2d_winograd.cu.
//   forward:         rows = N·P·Q (output pixels), cols = K/G,     depth = C/G·R·S
//   backward-weight: rows = K/G, cols = C/G·R·S, depth = N·P·Q, split over blocks and added with
//                    atomics (parameter gradients accumulate anyway).
// Layouts: x (N, C, H, W), w (K, C/G, R, S), y (N, K, P, Q). Batches are split so that every
// tensor of one launch has fewer than 2^30 elements (the tiles' int32 offsets).
#include <algorithm>

#include "cuda/conv2d_common.cuh"
#include "cuda/conv2d_gemm_tile.cuh"

namespace cnnfast::cuda {
namespace {

using gemm::FastDiv;
using gemm::Point;

// ---- forward ------------------------------------------------------------------------------------
// A(m = (n, p, q), k = (c, r, s)) = x[n, g·Cg + c, p·sh − pt + r·dh, q·sw − pl + s·dw]
struct FwdImage {
  static constexpr bool kFixedFast = true;
  const float* src;
  int H, W;
  FastDiv PQ, Q, RS, S;
  int CHW, CgHW, HW, sh, sw, pt, pl, dh, dw;
  CNNFAST_HD Point fixed(int g, int m) const {
    const int n = PQ.div(m), pq = m - n * PQ.d, p = Q.div(pq), q = pq - p * Q.d;
    const int h = p * sh - pt, w = q * sw - pl;
    return {n * CHW + g * CgHW + h * W + w, h, w};
  }
  CNNFAST_HD Point vary(int, int k) const {
    const int c = RS.div(k), rs = k - c * RS.d, r = S.div(rs), s = rs - r * S.d;
    const int h = r * dh, w = s * dw;
    return {c * HW + h * W + w, h, w};
  }
};
// y[n, g·Kg + j, p, q] = act(v + b[g·Kg + j])
struct FwdStore {
  float* y;
  const float* b;
  FastDiv PQ;
  int K, Kg;
  bool relu;
  CNNFAST_HD void operator()(int g, int m, int j, float v) const {
    const int n = PQ.div(m), pq = m - n * PQ.d, k = g * Kg + j;
    if (b) v += b[k];
    if (relu) v = v < 0.f ? 0.f : v;  // keeps NaN, as the CPU epilogue
    y[(n * K + k) * PQ.d + pq] = v;
  }
};

// ---- backward-weight ----------------------------------------------------------------------------
// A(j, k = (n, p, q)) = dy[n, g·Kg + j, p, q]
struct WgtGradOut {
  static constexpr bool kFixedFast = false;
  const float* src;
  int H = 1, W = 1;
  FastDiv PQ;
  int Kg, KPQ;
  CNNFAST_HD Point fixed(int g, int j) const { return {(g * Kg + j) * PQ.d, 0, 0}; }
  CNNFAST_HD Point vary(int, int k) const {
    const int n = PQ.div(k);
    return {n * KPQ + (k - n * PQ.d), 0, 0};
  }
};
// B(k = (n, p, q), col = (c, r, s)) = x[n, g·Cg + c, p·sh − pt + r·dh, q·sw − pl + s·dw]
struct WgtImage {
  static constexpr bool kFixedFast = false;
  const float* src;
  int H, W;
  FastDiv PQ, Q, RS, S;
  int CHW, CgHW, HW, sh, sw, pt, pl, dh, dw;
  CNNFAST_HD Point fixed(int g, int col) const {
    const int c = RS.div(col), rs = col - c * RS.d, r = S.div(rs), s = rs - r * S.d;
    const int h = r * dh, w = s * dw;
    return {g * CgHW + c * HW + h * W + w, h, w};
  }
  CNNFAST_HD Point vary(int, int k) const {
    const int n = PQ.div(k), pq = k - n * PQ.d, p = Q.div(pq), q = pq - p * Q.d;
    const int h = p * sh - pt, w = q * sw - pl;
    return {n * CHW + h * W + w, h, w};
  }
};
// dw[g·Kg + j, col] += v
struct WgtStore {
  float* dw;
  int Kg, CgRS;
  CNNFAST_HD void operator()(int g, int j, int col, float v) const {
    atomic_add(&dw[(g * Kg + j) * CgRS + col], v);
  }
};

// ---- drivers --------------------------------------------------------------------------------------
void forward(const Exec& e, const Conv2dParams& p, float* y, const float* x, const float* w,
             const float* b, bool relu) {
  if (p.N == 0 || p.K == 0 || p.P == 0 || p.Q == 0) return;
  const int64_t Cg = p.Cg(), Kg = p.Kg(), RS = p.R * p.S, PQ = p.P * p.Q, HW = p.H * p.W;
  for_chunks(p, images_per_launch(p), [&](const Conv2dParams& s, int64_t n0) {
    const FwdImage A{x + n0 * p.C * HW, int(p.H), int(p.W), FastDiv(PQ), FastDiv(p.Q),
                     FastDiv(RS), FastDiv(p.S), int(p.C * HW), int(Cg * HW), int(HW),
                     int(p.stride_h), int(p.stride_w), int(p.pad_top), int(p.pad_left),
                     int(p.dil_h), int(p.dil_w)};
    const gemm::Strided<false> B{w, 1, 1, int(Kg * Cg * RS), int(Cg * RS), 1};  // w[g·Kg + j, k]
    const FwdStore St{y + n0 * p.K * PQ, b, FastDiv(PQ), int(p.K), int(Kg), relu};
    const int64_t rows = s.N * PQ;
    const int tn = gemm::lanes_for(Kg), tm = gemm::rows_lanes_for(rows, Kg, tn, p.groups, e.sms);
    gemm::run_tiled(e.on_host, "launch of conv2d forward (implicit GEMM)", tm, tn, p.groups, rows,
                    Kg, Cg * RS, 1, A, B, St);
  });
}

// dw += dy ⋆ x. Few output tiles and a long sum: the sum is split over blocks to fill one whole
// wave of the GPU (gemm::run's splits == 0), each block over at least 16 slices.
void backward_weight(const Exec& e, const Conv2dParams& p, float* dw, const float* dy,
                     const float* x) {
  if (p.N == 0 || p.K == 0 || p.P == 0 || p.Q == 0) return;
  const int64_t Cg = p.Cg(), Kg = p.Kg(), RS = p.R * p.S, PQ = p.P * p.Q, HW = p.H * p.W;
  const int64_t cols = Cg * RS;
  const int tm = gemm::lanes_for(Kg), tn = gemm::lanes_for(cols);
  for_chunks(p, images_per_launch(p), [&](const Conv2dParams& s, int64_t n0) {
    const int64_t depth = s.N * PQ;
    const WgtGradOut A{dy + n0 * p.K * PQ, 1, 1, FastDiv(PQ), int(Kg), int(p.K * PQ)};
    const WgtImage B{x + n0 * p.C * HW, int(p.H), int(p.W), FastDiv(PQ), FastDiv(p.Q),
                     FastDiv(RS), FastDiv(p.S), int(p.C * HW), int(Cg * HW), int(HW),
                     int(p.stride_h), int(p.stride_w), int(p.pad_top), int(p.pad_left),
                     int(p.dil_h), int(p.dil_w)};
    gemm::run_tiled(e.on_host, "launch of conv2d backward-weight (implicit GEMM)", tm, tn,
                    p.groups, Kg, cols, depth, 0, A, B, WgtStore{dw, int(Kg), int(cols)}, e.sms);
  });
}

}  // namespace

int multiprocessors() {
  static const int n = [] {
    int v = 0, dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
      cudaGetLastError();
      return 100;
    }
    return v;
  }();
  return n;
}

void conv2d_forward(const Conv2dParams& p, float* y, const float* x, const float* w,
                    const float* b, bool relu, ConvAlgo algo) {
  const Exec e{false, multiprocessors()};
  if (const int m = winograd_tile_for(p, algo, ConvPass::forward))
    return winograd_forward(e, m, p, y, x, w, b, relu);
  if (depthwise_applies(p)) return depthwise_forward(false, p, y, x, w, b, relu);
  forward(e, p, y, x, w, b, relu);
}

void conv2d_backward_weight(const Conv2dParams& p, float* dw, float* db, const float* dy,
                            const float* x, ConvAlgo algo) {
  const Exec e{false, multiprocessors()};
  const int m = dw ? winograd_tile_for(p, algo, ConvPass::weight) : 0;  // db alone: no algo
  if (m) winograd_backward_weight(e, m, p, dw, dy, x);
  else if (dw && depthwise_applies(p)) depthwise_backward_weight(false, p, dw, dy, x);
  else if (dw) backward_weight(e, p, dw, dy, x);
  if (db) bias_grad(p.N, p.K, p.P * p.Q, db, dy);
}

namespace emulate {
void conv2d_forward(const Conv2dParams& p, float* y, const float* x, const float* w,
                    const float* b, bool relu, ConvAlgo algo) {
  const Exec e{true, kEmulatedSms};
  if (const int m = winograd_tile_for(p, algo, ConvPass::forward))
    return winograd_forward(e, m, p, y, x, w, b, relu);
  if (depthwise_applies(p)) return depthwise_forward(true, p, y, x, w, b, relu);
  forward(e, p, y, x, w, b, relu);
}
void conv2d_backward_weight(const Conv2dParams& p, float* dw, const float* dy, const float* x,
                            int multiprocessors, ConvAlgo algo) {
  const Exec e{true, multiprocessors};
  if (const int m = winograd_tile_for(p, algo, ConvPass::weight))
    return winograd_backward_weight(e, m, p, dw, dy, x);
  if (depthwise_applies(p)) return depthwise_backward_weight(true, p, dw, dy, x);
  backward_weight(e, p, dw, dy, x);
}
}  // namespace emulate

}  // namespace cnnfast::cuda
