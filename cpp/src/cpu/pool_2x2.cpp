// pool_2x2.cpp — the 2x2 stride-2 pooling loops (no padding, dilation, ceil overhang or
// adaptive windows: LeNet, VGG, U-Net, SegNet). Forward: each thread takes contiguous chunks of
// output rows and hands whole rows to the 2x2 microkernel (no per-row window setup, which cost
// more than the pooling itself on LeNet's 10x10 maps). Backward: the same rows, each writing its
// two dx rows (and the odd last column/row) exactly once: race-free, no zero pass, deterministic.
// Max-unpooling whose indices fit these windows runs here too (see pool_planes.h).
#include <algorithm>

#include "cnnfast/runtime.h"
#include "cpu/parallel.h"
#include "cpu/pool_dispatch.h"
#include "cpu/pool_planes.h"
#include "cpu/pool_rows.h"

namespace cnnfast::cpu {
namespace {

// f(pl, od, oh) for every output row, threads taking contiguous chunks (for_each_raster).
template <class F>
void for_each_row(const PoolParams& p, F&& f) {
  constexpr int64_t kRowsPerThread = 16;  // below this a thread costs more than it saves
  for_each_raster(p.planes(), p.out[0], p.out[1], kRowsPerThread, f);
}

}  // namespace

bool pool2x2_applies(const PoolParams& p) {
  return !p.adaptive && p.kernel[0] == 1 && p.stride[0] == 1 && p.pad[0] == 0 &&
         p.kernel[1] == 2 && p.kernel[2] == 2 && p.stride[1] == 2 && p.stride[2] == 2 &&
         p.pad[1] == 0 && p.pad[2] == 0 && p.dil[1] == 1 && p.dil[2] == 1 &&
         2 * p.out[1] <= p.in[1] && 2 * p.out[2] <= p.in[2] && p.out[0] == p.in[0];
}

template <class T>
void max_pool2x2_forward(const PoolParams& p, T* y, int64_t* idx, const T* x) {
  const PoolKernels<T>& k = pool_kernels<T>(p.in_plane());
  const int64_t H = p.in[1], W = p.in[2], OH = p.out[1], OW = p.out[2];
  for_each_row(p, [&](int64_t pl, int64_t od, int64_t oh) {
    const int64_t ia = (od * H + 2 * oh) * W, o = pl * p.out_plane() + (od * OH + oh) * OW;
    const T* a = x + pl * p.in_plane() + ia;
    k.max2x2(OW, a, a + W, ia, ia + W, y + o, idx ? idx + o : nullptr);
  });
}

template <class T>
void avg_pool2x2_forward(const PoolParams& p, T scale, T* y, const T* x) {
  const PoolKernels<T>& k = pool_kernels<T>(p.in_plane());
  const int64_t H = p.in[1], W = p.in[2], OH = p.out[1], OW = p.out[2];
  for_each_row(p, [&](int64_t pl, int64_t od, int64_t oh) {
    const T* a = x + pl * p.in_plane() + (od * H + 2 * oh) * W;
    k.sum2x2(OW, a, a + W, scale, y + pl * p.out_plane() + (od * OH + oh) * OW);
  });
}

// The dx rows 2oh, 2oh+1 of output row oh (and, for the last output row, the rows below it that
// no window reads): cells(pl, od, oh, da, stream) writes columns 2j, 2j+1 (j < OW) of da and
// db = da + W, with non-temporal stores where it can when stream is true (a dx larger than the
// last-level cache); the rest of the rows is 0.
template <class T, class Cells>
void backward_rows(const PoolParams& p, T* dx, Cells&& cells) {
  const int64_t H = p.in[1], W = p.in[2], OH = p.out[1], OW = p.out[2];
  const bool stream = stream_output(p.planes() * p.in_plane() * int64_t(sizeof(T)));
  for_each_row(p, [&](int64_t pl, int64_t od, int64_t oh) {
    T* slab = dx + pl * p.in_plane() + od * H * W;  // (H, W) of this (plane, d)
    T* da = slab + 2 * oh * W;
    T* db = da + W;
    cells(pl, od, oh, da, stream);
    std::fill(da + 2 * OW, da + W, T(0));
    std::fill(db + 2 * OW, db + W, T(0));
    if (oh == OH - 1) std::fill(slab + 2 * OH * W, slab + H * W, T(0));
  });
}

template <class T>
void avg_pool2x2_backward(const PoolParams& p, T scale, T* dx, const T* dy) {
  const PoolKernels<T>& k = pool_kernels<T>(p.in_plane());
  const int64_t W = p.in[2], OH = p.out[1], OW = p.out[2];
  backward_rows<T>(p, dx, [&](int64_t pl, int64_t od, int64_t oh, T* da, bool stream) {
    k.avg2x2_bwd(OW, dy + pl * p.out_plane() + (od * OH + oh) * OW, scale, W, da, stream);
  });
}

template <class T>
bool max_pool2x2_backward(const PoolParams& p, T* dx, const T* dy, const int64_t* idx) {
  const PoolKernels<T>& k = pool_kernels<T>(p.in_plane());
  const int64_t H = p.in[1], W = p.in[2], OH = p.out[1], OW = p.out[2];
  bool in_window = true;  // only ever set to false, by any thread
  backward_rows<T>(p, dx, [&](int64_t pl, int64_t od, int64_t oh, T* da, bool stream) {
    const int64_t o = pl * p.out_plane() + (od * OH + oh) * OW;
    if (!k.max2x2_bwd(OW, dy + o, idx + o, (od * H + 2 * oh) * W, W, da, stream))
      __atomic_store_n(&in_window, false, __ATOMIC_RELAXED);
  });
  return in_window;
}

// One pooled row a thread: dx's row gathered from the two rows of dy its windows cover.
template <class T>
bool max_unpool2x2_backward(const PoolParams& p, T* dx, const T* dy, const int64_t* idx) {
  const PoolKernels<T>& k = pool_kernels<T>(p.in_plane());
  const int64_t H = p.in[1], W = p.in[2], OH = p.out[1], OW = p.out[2];
  bool in_window = true;  // only ever set to false, by any thread
  for_each_row(p, [&](int64_t pl, int64_t od, int64_t oh) {
    const int64_t ia = (od * H + 2 * oh) * W, o = pl * p.out_plane() + (od * OH + oh) * OW;
    if (!k.unpool2x2_bwd(OW, dy + pl * p.in_plane() + ia, idx + o, ia, W, dx + o))
      __atomic_store_n(&in_window, false, __ATOMIC_RELAXED);
  });
  return in_window;
}

#define CNNFAST_INSTANTIATE(T)                                                                \
  template void max_pool2x2_forward<T>(const PoolParams&, T*, int64_t*, const T*);            \
  template void avg_pool2x2_forward<T>(const PoolParams&, T, T*, const T*);                   \
  template void avg_pool2x2_backward<T>(const PoolParams&, T, T*, const T*);                  \
  template bool max_pool2x2_backward<T>(const PoolParams&, T*, const T*, const int64_t*);      \
  template bool max_unpool2x2_backward<T>(const PoolParams&, T*, const T*, const int64_t*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
