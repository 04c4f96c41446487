// conv2d_common.cuh — what the CUDA conv2d files share: the batch split that keeps every tensor
// of one launch under 2^30 elements (the kernels' offsets are 32-bit), the stride phases' taps,
// the depthwise kernels (conv2d_depthwise.cu: groups == C, one input channel per group, any
// channel multiplier) that conv2d_implicit_gemm.cu hands those shapes to, the Winograd entry
// points (conv2d_winograd.cu), for_each_index, and where a pass runs (Exec) with its scratch.
// on_host runs the same element bodies on host arrays (the test hooks of cuda::emulate).
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "cnnfast/conv.h"
#include "cuda/runtime.cuh"

namespace cnnfast::cuda {

// Where a conv pass runs: on the GPU with `sms` multiprocessors, or its block programs on the
// host (the emulate:: test hooks, which choose tiles as for a GPU of kEmulatedSms).
struct Exec {
  bool on_host;
  int sms;
};
constexpr int kEmulatedSms = 16;

// Scratch floats on the device, or in host memory for the emulation; `zeroed`: filled with 0.
// Otherwise the host's is NaN (the device's is whatever was there), so that an emulated read
// before the write shows in the result instead of passing on a zero.
class Buffer {
 public:
  Buffer(bool on_host, int64_t count, bool zeroed = false) {
    if (on_host) {
      host_.assign(size_t(count), zeroed ? 0.f : std::numeric_limits<float>::quiet_NaN());
    } else {
      dev_ = std::make_unique<Scratch<float>>(count);
      if (zeroed) fill_bytes(dev_->get(), 0, count * int64_t(sizeof(float)));
    }
  }
  float* get() { return dev_ ? dev_->get() : host_.data(); }

 private:
  std::vector<float> host_;
  std::unique_ptr<Scratch<float>> dev_;
};

// Images per launch so that every tensor of a launch (and `extra` elements per image) stays
// under 2^30 elements; throws when one image is already too large.
inline int64_t images_per_launch(const Conv2dParams& p, int64_t extra = 0) {
  const int64_t limit = int64_t(1) << 30;
  const int64_t per = std::max({p.C * p.H * p.W, p.K * p.P * p.Q, extra, int64_t(1)});
  if (per >= limit || p.K * p.Cg() * p.R * p.S >= limit)
    throw std::invalid_argument("conv2d (CUDA): one image's input, output or the weight has 2^30 "
                                "elements or more (the kernels' offsets are 32-bit)");
  // The padded extent bounds every coordinate the kernels form (p·stride, r·dilation: the
  // validator keeps the dilated kernel inside it).
  if (p.H + p.pad_top + p.pad_bottom + p.stride_h >= limit ||
      p.W + p.pad_left + p.pad_right + p.stride_w >= limit)
    throw std::invalid_argument("conv2d (CUDA): padded input extent + stride reaches 2^30 (the "
                                "kernels' coordinates are 32-bit)");
  return std::max<int64_t>(1, std::min(p.N, limit / per));
}

// Calls fn(sub, n0) for batch chunks [n0, n0 + sub.N) of at most `per` images.
template <class Fn>
void for_chunks(const Conv2dParams& p, int64_t per, Fn&& fn) {
  for (int64_t n0 = 0; n0 < p.N; n0 += per) {
    Conv2dParams sub = p;
    sub.N = std::min(per, p.N - n0);
    fn(sub, n0);
  }
}

// Backward-data by stride phase, along one dim: the input positions v = phase + stride·a are
// reached by the taps r = r0 + i·step (i < n) — those with stride | phase + pad − r·dil — which
// read output position a + o0 − i·delta.
struct PhaseTaps {
  int r0, step, n, o0, delta;
};
inline PhaseTaps phase_taps(int64_t phase, int64_t stride, int64_t pad, int64_t dil, int64_t R) {
  const int64_t step = stride / std::gcd(stride, dil);
  int64_t r0 = 0;
  const int64_t most = std::min(step, R);  // a tap past R reaches nothing
  while (r0 < most && ((phase + pad - r0 * dil) % stride + stride) % stride != 0) ++r0;
  PhaseTaps t{int(r0), int(step), 0, 0, int(step * dil / stride)};
  if (r0 < step && r0 < R) {
    t.n = int((R - r0 + step - 1) / step);
    t.o0 = int((phase + pad - r0 * dil) / stride);  // exact
  }
  return t;
}

// body(i) for every i < total (< 2^31): thread by thread on the host (the emulation), else one
// grid-stride kernel launch — the element-per-thread passes (depthwise, col2im, weight packing).
template <class Body>
__global__ void each_index_kernel(int total, Body body) {
  CNNFAST_GRID_STRIDE(i, total) { body(int(i)); }
}
template <class Body>
void for_each_index(bool on_host, int64_t total, const Body& body, const char* what) {
  if (total <= 0) return;
  if (on_host) {
    for (int i = 0; i < int(total); ++i) body(i);
    return;
  }
  each_index_kernel<<<blocks_for(total), kThreads>>>(int(total), body);
  check(cudaGetLastError(), what, __FILE__, __LINE__);
}

// Winograd F(m x m, 3x3) (conv2d_winograd.cu). winograd_tile_for: the tile (2 or 4) that `algo`
// asks of `pass`, or 0 for the implicit GEMM ('auto', 'implicit'); throws std::invalid_argument
// for the CPU-only algorithms and for shapes Winograd cannot take (not 3x3 at stride 1, or one
// image's transformed tiles past the 32-bit offsets).
enum class ConvPass { forward, data, weight };
int winograd_tile_for(const Conv2dParams& p, ConvAlgo algo, ConvPass pass);
void winograd_forward(const Exec& e, int m, const Conv2dParams& p, float* y, const float* x,
                      const float* w, const float* b, bool relu);
void winograd_backward_data(const Exec& e, int m, const Conv2dParams& p, float* dx,
                            const float* dy, const float* w);
// dw += dy ⋆ x
void winograd_backward_weight(const Exec& e, int m, const Conv2dParams& p, float* dw,
                              const float* dy, const float* x);

// Backward-data of narrow inputs (C/G < 32) as a direct sum (conv2d_backward_data_direct.cu),
// taken instead of the dcol GEMM when CNNFAST_CUDA_NARROW_DATA=direct (an A/B knob until the
// H200 has timed both).
bool direct_data_chosen();
void direct_backward_data(const Exec& e, const Conv2dParams& p, float* dx, const float* dy,
                          const float* w);

inline bool depthwise_applies(const Conv2dParams& p) {
  return p.groups > 1 && p.Cg() == 1 && p.H > 0 && p.W > 0;  // empty planes: the GEMM path
}

void depthwise_forward(bool on_host, const Conv2dParams& p, float* y, const float* x,
                       const float* w, const float* b, bool relu);
void depthwise_backward_data(bool on_host, const Conv2dParams& p, float* dx, const float* dy,
                             const float* w);
// dw += dy ⋆ x
void depthwise_backward_weight(bool on_host, const Conv2dParams& p, float* dw, const float* dy,
                               const float* x);

}  // namespace cnnfast::cuda
