// conv3d_depth_taps.cuh — host-side planning for conv3d.cu: which kernel-depth taps land inside
// the tensor for each depth slice, and the runs of consecutive slices that share them (one GEMM
// launch per run).
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "cnnfast/conv_family.h"

namespace cnnfast::cuda {

// The kernel-depth taps t = first + i·step (i < count) of one slice; `off` the depth coordinate
// (input slice for forward / weight gradient, output slice for backward-data) of tap `first`,
// moving by `delta` per step.
struct DepthTaps {
  int first = 0, step = 1, count = 0, off = 0, delta = 0;
};

// A run of depth slices with the same taps: slice i (< count) reads depth src0 + i·src_step of
// the gathered tensor and writes / is depth dst0 + i·dst_step of the other.
struct Slices {
  int count, src0, src_step, dst0, dst_step;
};

// Forward / weight gradient, output slice od: taps with 0 <= od·sd − pd + t·dd < D.
inline DepthTaps forward_taps(const Conv3dParams& p, int64_t od) {
  DepthTaps t;
  const int64_t base = od * p.stride_d - p.pad_front;
  for (int64_t k = 0; k < p.KD; ++k) {
    const int64_t d = base + k * p.dil_d;
    if (d < 0 || d >= p.D) continue;
    if (t.count == 0) t.first = int(k), t.off = int(d);
    ++t.count;
  }
  t.delta = int(p.dil_d);
  return t;
}

// Backward-data, input slice id: taps with sd | id + pd − t·dd and 0 <= that quotient < OD; they
// are every step-th from the first, the output slice falling by `delta` each.
inline DepthTaps data_taps(const Conv3dParams& p, int64_t id) {
  DepthTaps t;
  const int64_t step = p.stride_d / std::gcd(p.stride_d, p.dil_d);
  t.step = int(step);
  t.delta = int(step * p.dil_d / p.stride_d);
  int64_t k = 0;
  for (; k < p.KD; ++k) {  // the first tap whose output slice exists (it only falls with k)
    const int64_t v = id + p.pad_front - k * p.dil_d;
    if (v < 0) return t;
    if (v % p.stride_d == 0 && v / p.stride_d < p.OD) break;
  }
  if (k >= p.KD) return t;
  t.first = int(k);
  t.off = int((id + p.pad_front - k * p.dil_d) / p.stride_d);
  for (; k < p.KD && id + p.pad_front - k * p.dil_d >= 0; k += step) ++t.count;
  return t;
}

// Runs of slices with the same taps. Forward / weight gradient: consecutive output slices (the
// input depth of their first tap moves by sd). Backward-data: per depth phase id mod sd, the
// input slices id, id + sd, ... (the output slice of their first tap moves by 1).
struct TapRun {
  DepthTaps taps;
  Slices s;
};
inline bool same_taps(const DepthTaps& a, const DepthTaps& b) {
  return a.first == b.first && a.count == b.count;
}
inline std::vector<TapRun> forward_runs(const Conv3dParams& p) {
  std::vector<TapRun> runs;
  for (int64_t od = 0; od < p.OD; ++od) {
    const DepthTaps t = forward_taps(p, od);
    if (!runs.empty() && same_taps(runs.back().taps, t)) {
      ++runs.back().s.count;
      continue;
    }
    runs.push_back({t, {1, t.off, int(p.stride_d), int(od), 1}});
  }
  return runs;
}
inline std::vector<TapRun> data_runs(const Conv3dParams& p) {
  std::vector<TapRun> runs;
  for (int64_t phase = 0; phase < std::min(p.stride_d, p.D); ++phase) {
    const size_t first_of_phase = runs.size();
    for (int64_t id = phase; id < p.D; id += p.stride_d) {
      const DepthTaps t = data_taps(p, id);
      if (runs.size() > first_of_phase && same_taps(runs.back().taps, t)) {
        ++runs.back().s.count;
        continue;
      }
      runs.push_back({t, {1, t.off, 1, int(id), int(p.stride_d)}});
    }
  }
  return runs;
}

}  // namespace cnnfast::cuda
