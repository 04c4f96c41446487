// pool.h — the public C++ API of pooling (max/avg, regular and adaptive), max-unpooling and
// interpolation. One 3-D core: 1-D/2-D run as 3-D with leading singleton dims (D = H = 1).
// Layouts: x is (N, C, D, H, W), y is (N, C, OD, OH, OW); a "plane" is one (n, c) pair.
// Indices are int64, flat within each (N, C) plane of the pooling INPUT: (d*H + h)*W + w.
// Gradient convention: every gradient here is an activation gradient and is overwritten.
#pragma once
#include <cstdint>
#include <vector>

namespace cnnfast {

struct PoolParams {
  int64_t N, C;
  int64_t in[3];      // (D, H, W)
  int64_t out[3];     // (OD, OH, OW)
  int64_t kernel[3];  // regular windows: kernel, stride, padding (both sides), dilation
  int64_t stride[3];
  int64_t pad[3];
  int64_t dil[3];
  bool adaptive;  // windows [floor(o*in/out), ceil((o+1)*in/out)) instead of the four above
  int64_t planes() const { return N * C; }
  int64_t in_plane() const { return in[0] * in[1] * in[2]; }
  int64_t out_plane() const { return out[0] * out[1] * out[2]; }
};

// Validates (throws std::invalid_argument naming the argument) and derives the output size:
// out = floor_or_ceil((in + 2*pad - dil*(k-1) - 1) / stride) + 1, and with ceil_mode the last
// window must start inside the input or its left padding (PyTorch's rule). pad <= kernel/2.
PoolParams pool_params(int64_t N, int64_t C, const int64_t in[3], const int64_t kernel[3],
                       const int64_t stride[3], const int64_t pad[3], const int64_t dil[3],
                       bool ceil_mode);
PoolParams adaptive_pool_params(int64_t N, int64_t C, const int64_t in[3], const int64_t out[3]);

// One output index's window along one dim, clipped to the input: taps first + t*step for
// t < count; `padded` = the window's length counting padding (avg's count_include_pad divisor).
struct PoolWindow {
  int64_t first, count, step, padded;
};
#if defined(__CUDACC__)
#define CNNFAST_POOL_HD __host__ __device__  // the CUDA kernels compute windows in place too
#else
#define CNNFAST_POOL_HD
#endif
inline CNNFAST_POOL_HD PoolWindow pool_window(const PoolParams& p, int dim, int64_t o) {
  const int64_t in = p.in[dim], out = p.out[dim];
  if (p.adaptive) {
    const int64_t start = o * in / out, end = ((o + 1) * in + out - 1) / out;
    return {start, end - start, 1, end - start};
  }
  const int64_t k = p.kernel[dim], dl = p.dil[dim];
  const int64_t start = o * p.stride[dim] - p.pad[dim];
  const int64_t t_lo = start < 0 ? (-start + dl - 1) / dl : 0;
  const int64_t last = in - 1 - start;  // largest offset from start still inside the input
  const int64_t t_hi = last < 0 ? 0 : (k < last / dl + 1 ? k : last / dl + 1);
  const int64_t end = start + k < in + p.pad[dim] ? start + k : in + p.pad[dim];
  // (ternaries, not std::min: the same code runs on the device)
  return {start + t_lo * dl, t_hi - t_lo > 0 ? t_hi - t_lo : 0, dl, end - start};
}
std::vector<PoolWindow> pool_windows(const PoolParams& p, int dim);  // every o < out[dim]

// Avg pooling's divisor options: divisor_override > 0 replaces the count entirely.
struct AvgOptions {
  bool count_include_pad = true;
  int64_t divisor_override = 0;
};

enum class PoolAlgo { automatic, ref };
PoolAlgo pool_algo_from_name(const char* name);  // "auto" | "ref"

// y = max over each window; idx (may be null) = the flat input index of the first maximum in
// raster order (a NaN wins and propagates).
template <class T>
void max_pool_forward(const PoolParams& p, T* y, int64_t* idx, const T* x,
                      PoolAlgo algo = PoolAlgo::automatic);
// dx = Σ over outputs j of dy[j] at idx[j] (overlapping windows sharing a switch add up).
// Throws std::invalid_argument if an index is outside [0, in_plane) — checked before its write.
template <class T>
void max_pool_backward(const PoolParams& p, T* dx, const T* dy, const int64_t* idx,
                       PoolAlgo algo = PoolAlgo::automatic);
template <class T>
void avg_pool_forward(const PoolParams& p, const AvgOptions& o, T* y, const T* x,
                      PoolAlgo algo = PoolAlgo::automatic);
template <class T>
void avg_pool_backward(const PoolParams& p, const AvgOptions& o, T* dx, const T* dy,
                       PoolAlgo algo = PoolAlgo::automatic);

// Max-unpooling: x and idx are (planes, in_count); y is (planes, out_count). y is zero except
// y[idx[j]] = x[j]; when several j share an index the LAST in raster order wins (deterministic).
// backward is its exact adjoint: dx[j] = dy[idx[j]] if j is that last writer, else 0.
// With the (D, H, W) extents known (in: pooled, out: unpooled; 0 when not given), indices that
// all lie in the 2x2 stride-2 windows they would come from run a one-pass path (disjoint windows:
// no shared index, so no writer bookkeeping); anything else takes the general path.
struct UnpoolParams {
  int64_t planes, in_count, out_count;
  int64_t in[3] = {0, 0, 0}, out[3] = {0, 0, 0};
};
UnpoolParams unpool_params(int64_t planes, int64_t in_count, int64_t out_count);
UnpoolParams unpool_params(int64_t planes, const int64_t in[3], const int64_t out[3]);
template <class T>
void max_unpool_forward(const UnpoolParams& p, T* y, const T* x, const int64_t* idx,
                        PoolAlgo algo = PoolAlgo::automatic);
template <class T>
void max_unpool_backward(const UnpoolParams& p, T* dx, const T* dy, const int64_t* idx,
                         PoolAlgo algo = PoolAlgo::automatic);

// Interpolation (PyTorch's nearest / linear / bilinear / trilinear): per dim the source
// coordinate of output o is o*scale (nearest, or align_corners) or (o+0.5)*scale-0.5 clamped
// at 0 (linear); scale[d] > 0 is given (1/scale_factor) or derived from the sizes when <= 0.
enum class InterpMode { nearest, linear };
struct InterpParams {
  int64_t N, C;
  int64_t in[3], out[3];
  double scale[3];
  InterpMode mode;
  bool align_corners;
  int nd = 3;  // the op's spatial dims: dims d < 3 - nd are size-1 padding, not interpolated
  int64_t planes() const { return N * C; }
};
InterpParams interp_params(int64_t N, int64_t C, const int64_t in[3], const int64_t out[3],
                           const double scale[3], InterpMode mode, bool align_corners);
// Along one dim: output o reads i0 with weight 1-lambda and i1 with weight lambda.
struct InterpTap {
  int64_t i0, i1;
  double lambda;
};
std::vector<InterpTap> interp_taps(const InterpParams& p, int dim);
template <class T>
void interpolate_forward(const InterpParams& p, T* y, const T* x,
                         PoolAlgo algo = PoolAlgo::automatic);
template <class T>
void interpolate_backward(const InterpParams& p, T* dx, const T* dy,
                          PoolAlgo algo = PoolAlgo::automatic);

}  // namespace cnnfast
