// conv2d_backward_data_direct.cu — conv2d's backward-data for narrow inputs (C/G < 32) as a
// direct sum, no GEMM: per stride phase (h mod sh, w mod sw) a thread owns kPx pixels of one
// phase row, kLanes apart (a warp: 32·kPx consecutive pixels of the phase, one (n, g, channel
// block, a)), and CB input channels, and adds dy·w over the Kg output channels and the phase's
// taps. A warp shares its taps, so its weight reads are one broadcast and its dy reads one
// coalesced run per pixel slot. Against the dcol path (conv2d_backward_data.cu: a GEMM whose
// ≤ 147 columns pad to 192, then dcol — 118 MB on resnet_conv1 — written and gathered back)
// it does the useful multiply-adds only and keeps nothing in scratch.
// Chosen over dcol by CNNFAST_CUDA_NARROW_DATA=direct until an H200 A/B sets the rule.
#include <cstdlib>
#include <cstring>

#include "cuda/conv2d_common.cuh"
#include "cuda/conv2d_gemm_tile.cuh"

namespace cnnfast::cuda {
namespace {

using gemm::FastDiv;

constexpr int kLanes = 32, kPx = 4;  // pixels per thread, kLanes apart along the phase row

// One phase of one launch: dx (N, C, H, W), dy (N, K, P, Q), w (K, Cg, R, S) for images
// [n0, n0 + N) (the pointers start there). Thread i = ((((n·G + g)·CBs + cb)·Ha + a)·BQ + bq)·32
// + lane; pixel slot t: b = bq·32·kPx + t·32 + lane, (h, w) = (ph + sh·a, pw + sw·b).
template <int CB>
struct DirectData {
  float* dx;
  const float* dy;
  const float* w;
  FastDiv BQ, Ha, CBs, G;
  int Wa, C, Cg, HW, W, K, Kg, P, Q, PQ, RS, S;
  int ph, pw, sh, sw;
  PhaseTaps tr, ts;  // r = tr.r0 + ir·tr.step reads dy row oh = a + tr.o0 − ir·tr.delta

  CNNFAST_HD void operator()(int i) const {
    const int lane = i % kLanes, warp = i / kLanes;
    int rest = BQ.div(warp);
    const int bq = warp - rest * BQ.d;
    int next = Ha.div(rest);
    const int a = rest - next * Ha.d;
    rest = CBs.div(next);
    const int cb = next - rest * CBs.d;
    const int n = G.div(rest), g = rest - n * G.d;
    const int c0 = cb * CB, b0 = bq * kLanes * kPx + lane, last = b0 + (kPx - 1) * kLanes;
    float acc[kPx][CB];
    CNNFAST_UNROLL for (int t = 0; t < kPx; ++t)
      CNNFAST_UNROLL for (int c = 0; c < CB; ++c) acc[t][c] = 0.f;
    // Edge threads (a pixel past the row, or a tap reading past dy's row) test every read.
    const bool edge = last >= Wa || b0 + ts.o0 - (ts.n - 1) * ts.delta < 0 || last + ts.o0 >= Q;
    if (edge) accumulate<true>(n, g, c0, a, b0, acc);
    else accumulate<false>(n, g, c0, a, b0, acc);
    const int h = ph + sh * a;
    float* out = dx + (n * C + g * Cg + c0) * HW + h * W + pw;
    CNNFAST_UNROLL for (int t = 0; t < kPx; ++t) {
      const int b = b0 + t * kLanes;
      if (b >= Wa) continue;
      for (int c = 0; c < CB && c0 + c < Cg; ++c) out[c * HW + sw * b] = acc[t][c];
    }
  }

  template <bool kEdge>
  CNNFAST_HD void accumulate(int n, int g, int c0, int a, int b0, float (&acc)[kPx][CB]) const {
    for (int j = 0; j < Kg; ++j) {
      const int k = g * Kg + j;
      const float* dyk = dy + (n * K + k) * PQ;
      const float* wk = w + (k * Cg + c0) * RS;
      for (int ir = 0; ir < tr.n; ++ir) {
        const int oh = a + tr.o0 - ir * tr.delta;  // the same in the whole warp
        if (oh < 0 || oh >= P) continue;
        const float* row = dyk + oh * Q;
        const int r = tr.r0 + ir * tr.step;
        for (int is = 0; is < ts.n; ++is) {
          const int s = ts.r0 + is * ts.step, shift = ts.o0 - is * ts.delta;
          float wv[CB];
          CNNFAST_UNROLL for (int c = 0; c < CB; ++c)
            wv[c] = c0 + c < Cg ? wk[c * RS + r * S + s] : 0.f;
          CNNFAST_UNROLL for (int t = 0; t < kPx; ++t) {
            const int b = b0 + t * kLanes, ow = b + shift;
            float v;
            if (kEdge) v = b < Wa && ow >= 0 && ow < Q ? row[ow] : 0.f;
            else v = row[ow];
            CNNFAST_UNROLL for (int c = 0; c < CB; ++c) acc[t][c] += v * wv[c];
          }
        }
      }
    }
  }
};

template <int CB>
void run_phases(const Exec& e, const Conv2dParams& p, float* dx, const float* dy,
                const float* w) {
  const int64_t Cg = p.Cg(), Kg = p.Kg(), CBs = (Cg + CB - 1) / CB;
  for_chunks(p, images_per_launch(p), [&](const Conv2dParams& s, int64_t n0) {
    for (int64_t ph = 0; ph < std::min(p.stride_h, p.H); ++ph)
      for (int64_t pw = 0; pw < std::min(p.stride_w, p.W); ++pw) {
        const int64_t Ha = (p.H - ph + p.stride_h - 1) / p.stride_h;
        const int64_t Wa = (p.W - pw + p.stride_w - 1) / p.stride_w;
        const int64_t BQ = (Wa + kLanes * kPx - 1) / (kLanes * kPx);
        const int64_t threads = s.N * p.groups * CBs * Ha * BQ * kLanes;
        if (threads >= (int64_t(1) << 31))
          throw std::invalid_argument("conv2d backward-data (CUDA, direct): 2^31 threads or more");
        const DirectData<CB> body{
            dx + n0 * p.C * p.H * p.W, dy + n0 * p.K * p.P * p.Q, w, FastDiv(BQ), FastDiv(Ha),
            FastDiv(CBs), FastDiv(p.groups), int(Wa), int(p.C), int(Cg), int(p.H * p.W),
            int(p.W), int(p.K), int(Kg), int(p.P), int(p.Q), int(p.P * p.Q), int(p.R * p.S),
            int(p.S), int(ph), int(pw), int(p.stride_h), int(p.stride_w),
            phase_taps(ph, p.stride_h, p.pad_top, p.dil_h, p.R),
            phase_taps(pw, p.stride_w, p.pad_left, p.dil_w, p.S)};
        for_each_index(e.on_host, threads, body, "launch of conv2d backward-data (direct)");
      }
  });
}

}  // namespace

bool direct_data_chosen() {
  const char* v = std::getenv("CNNFAST_CUDA_NARROW_DATA");
  return v && std::strcmp(v, "direct") == 0;
}

void direct_backward_data(const Exec& e, const Conv2dParams& p, float* dx, const float* dy,
                          const float* w) {
  // CB: the channel block that wastes least of the last one (3 → 3, 6 → 3, 8 → 4, 1 → 1)
  switch (p.Cg() % 4 == 0 ? 4 : p.Cg() % 3 == 0 ? 3 : p.Cg() % 2 == 0 ? 2 : p.Cg() < 4 ? 1 : 4) {
    case 1: return run_phases<1>(e, p, dx, dy, w);
    case 2: return run_phases<2>(e, p, dx, dy, w);
    case 3: return run_phases<3>(e, p, dx, dy, w);
    default: return run_phases<4>(e, p, dx, dy, w);
  }
}

}  // namespace cnnfast::cuda
