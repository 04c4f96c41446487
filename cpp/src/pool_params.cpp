// pool_params.cpp — validation, output sizes and per-dim window/tap tables for pooling,
// unpooling and interpolation (shared by the naive twin and the fast loops).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "cnnfast/checked.h"
#include "cnnfast/pool.h"

namespace cnnfast {
namespace {
std::string s(int64_t v) { return std::to_string(v); }
std::string dims(const int64_t v[3]) { return "(" + s(v[0]) + ", " + s(v[1]) + ", " + s(v[2]) + ")"; }

void check_input(int64_t N, int64_t C, const int64_t in[3]) {
  if (N < 0 || C < 0) arg_error("input: negative batch or channel count");
  for (int d = 0; d < 3; ++d)
    if (in[d] < 1) arg_error("input: every spatial dimension must be >= 1, got " + dims(in));
  checked_prod({N, C, in[0], in[1], in[2]}, "input size");
}
}  // namespace

PoolParams pool_params(int64_t N, int64_t C, const int64_t in[3], const int64_t kernel[3],
                       const int64_t stride[3], const int64_t pad[3], const int64_t dil[3],
                       bool ceil_mode) {
  check_input(N, C, in);
  PoolParams p{};
  p.N = N;
  p.C = C;
  for (int d = 0; d < 3; ++d) {
    if (kernel[d] < 1) arg_error("kernel_size must be >= 1, got " + dims(kernel));
    if (stride[d] < 1) arg_error("stride must be >= 1, got " + dims(stride));
    if (dil[d] < 1) arg_error("dilation must be >= 1, got " + dims(dil));
    if (pad[d] < 0) arg_error("padding must be >= 0, got " + dims(pad));
    if (2 * pad[d] > kernel[d])
      arg_error("padding " + dims(pad) + " must be at most half of kernel_size " + dims(kernel));
    const int64_t ext = checked_add(checked_mul(dil[d], kernel[d] - 1, "dilated kernel"), 1);
    const int64_t padded = checked_add(in[d], checked_mul(2, pad[d]), "padded input");
    if (ext > padded)
      arg_error("kernel_size " + dims(kernel) + " (dilated extent " + s(ext) +
                ") is larger than the padded input " + s(padded) + " along spatial dim " + s(d) +
                " of input " + dims(in));
    int64_t out = (padded - ext) / stride[d] + 1;
    if (ceil_mode) {
      if ((padded - ext) % stride[d]) ++out;
      if ((out - 1) * stride[d] >= in[d] + pad[d]) --out;  // last window must start inside
    }
    p.in[d] = in[d];
    p.out[d] = out;
    p.kernel[d] = kernel[d];
    p.stride[d] = stride[d];
    p.pad[d] = pad[d];
    p.dil[d] = dil[d];
  }
  p.adaptive = false;
  checked_prod({N, C, p.out[0], p.out[1], p.out[2]}, "output size");
  // Every window must read the input. An empty batch pools nothing but is checked the same;
  // its sizes may be far larger than memory, so only its first 2^16 outputs per dim are: they
  // hold every window that can miss the input (only one that starts in the left padding can,
  // and only when the input is narrower than the dilation, which leaves at most 2 outputs).
  const int64_t limit = N * C == 0 ? int64_t(1) << 16 : INT64_MAX;
  for (int d = 0; d < 3; ++d)
    for (int64_t o = 0; o < std::min(p.out[d], limit); ++o)
      if (pool_window(p, d, o).count < 1)
        arg_error("padding " + dims(pad) + " / dilation " + dims(dil) + ": output " + s(o) +
                  " along spatial dim " + s(d) + " of input " + dims(in) +
                  " pools a window that lies entirely in the padding (kernel_size " +
                  dims(kernel) + ", stride " + dims(stride) + ")");
  return p;
}

PoolParams adaptive_pool_params(int64_t N, int64_t C, const int64_t in[3], const int64_t out[3]) {
  check_input(N, C, in);
  PoolParams p{};
  p.N = N;
  p.C = C;
  for (int d = 0; d < 3; ++d) {
    if (out[d] < 1) arg_error("output_size must be >= 1, got " + dims(out));
    checked_mul(out[d], in[d], "output_size * input size");
    p.in[d] = in[d];
    p.out[d] = out[d];
    p.kernel[d] = p.stride[d] = p.dil[d] = 1;
    p.pad[d] = 0;
  }
  p.adaptive = true;
  checked_prod({N, C, out[0], out[1], out[2]}, "output size");
  return p;
}

std::vector<PoolWindow> pool_windows(const PoolParams& p, int dim) {
  std::vector<PoolWindow> w(static_cast<size_t>(p.out[dim]));
  for (int64_t o = 0; o < p.out[dim]; ++o) w[static_cast<size_t>(o)] = pool_window(p, dim, o);
  return w;
}

PoolAlgo pool_algo_from_name(const char* name) {
  const std::string n(name);
  if (n == "auto") return PoolAlgo::automatic;
  if (n == "ref") return PoolAlgo::ref;
  arg_error("algo must be one of 'auto', 'ref'; got '" + n + "'");
}

UnpoolParams unpool_params(int64_t planes, int64_t in_count, int64_t out_count) {
  if (planes < 0 || in_count < 0) arg_error("input: negative dimension");
  if (out_count < 1) arg_error("output_size: must have at least one element per plane");
  checked_mul(planes, in_count, "input size");
  checked_mul(planes, out_count, "output size");
  return {planes, in_count, out_count};
}

UnpoolParams unpool_params(int64_t planes, const int64_t in[3], const int64_t out[3]) {
  for (int d = 0; d < 3; ++d) {
    if (in[d] < 0) arg_error("input: negative dimension");
    if (out[d] < 1) arg_error("output_size: every dimension must be >= 1");
  }
  UnpoolParams p = unpool_params(planes, checked_prod({in[0], in[1], in[2]}, "input size"),
                                 checked_prod({out[0], out[1], out[2]}, "output_size"));
  for (int d = 0; d < 3; ++d) {
    p.in[d] = in[d];
    p.out[d] = out[d];
  }
  return p;
}

InterpParams interp_params(int64_t N, int64_t C, const int64_t in[3], const int64_t out[3],
                           const double scale[3], InterpMode mode, bool align_corners) {
  check_input(N, C, in);
  InterpParams p{};
  p.N = N;
  p.C = C;
  p.mode = mode;
  p.align_corners = align_corners;
  for (int d = 0; d < 3; ++d) {
    if (out[d] < 1) arg_error("size: every output dimension must be >= 1, got " + dims(out));
    if (!std::isfinite(scale[d])) arg_error("scale_factor must be finite");
    p.in[d] = in[d];
    p.out[d] = out[d];
    if (mode == InterpMode::linear && align_corners)
      p.scale[d] = out[d] > 1 ? double(in[d] - 1) / double(out[d] - 1) : 0.0;
    else if (mode == InterpMode::linear && out[d] == in[d])
      p.scale[d] = 1.0;  // the same size: a copy whatever scale_factor says (as PyTorch)
    else
      p.scale[d] = scale[d] > 0 ? scale[d] : 0.0;  // 0: from the sizes, in / out exactly
  }
  checked_prod({N, C, out[0], out[1], out[2]}, "output size");
  return p;
}

std::vector<InterpTap> interp_taps(const InterpParams& p, int dim) {
  const int64_t in = p.in[dim], out = p.out[dim];
  const double sc = p.scale[dim];
  std::vector<InterpTap> t(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    InterpTap& tap = t[static_cast<size_t>(o)];
    if (p.mode == InterpMode::nearest) {
      // floor(o·in/out) in integers when the sizes set the scale: in double, o·(in/out) can
      // land just under an exact integer (o = 23, 26 -> 46: 12.99..., not 13)
      const int64_t i = sc > 0 ? static_cast<int64_t>(std::floor(double(o) * sc))
                               : checked_mul(o, in, "interpolate index") / out;
      tap = {std::min(i, in - 1), std::min(i, in - 1), 0.0};
      continue;
    }
    // The same size is a copy, no weight on a neighbour (align_corners too), as PyTorch: an
    // inf comes out as 1·inf + 0·inf = NaN in its own place and spreads nowhere.
    if (in == out && (sc == 1.0 || p.align_corners)) {
      tap = {o, o, 0.0};
      continue;
    }
    const double s = sc > 0 || p.align_corners ? sc : double(in) / double(out);
    double src = p.align_corners ? double(o) * s : (double(o) + 0.5) * s - 0.5;
    if (src < 0) src = 0;
    const int64_t i0 = std::min(static_cast<int64_t>(src), in - 1);
    const int64_t i1 = i0 < in - 1 ? i0 + 1 : i0;
    tap = {i0, i1, std::min(std::max(src - double(i0), 0.0), 1.0)};
  }
  return t;
}

}  // namespace cnnfast
