// conv_family.cpp — entry points of conv3d, transposed convolution and tiled convolution: pick
// an algorithm, run it (conv3d: Winograd, implicit GEMM or vol2col + GEMM). Transposed
// convolution is the adjoint of conv2d/conv3d and reuses their engines: its forward is their
// backward-data, its backward their forward and backward-weight.
#include <algorithm>

#include "cnnfast/conv_family.h"
#include "cnnfast/runtime.h"
#include "cpu/conv3d_gemm.h"
#include "cpu/channel_sums.h"
#include "cpu/conv_implicit.h"
#include "cpu/conv_winograd.h"
#include "cpu/parallel.h"
#include "cpu/tiled_conv_gemm.h"
#include "cpu/tiled_conv_implicit.h"
#include "ref/conv_family_ref.h"

namespace cnnfast {
namespace {

// conv3d forward and backward-data: 'auto' runs Winograd (3x3 planes, unit stride in them; the
// depth taps sum in its GEMMs) where cpu::winograd_pays; 'winograd' always (its weight gradient
// then runs the implicit GEMM). Otherwise forward / weight gradient: 'auto' runs the implicit
// GEMM (no vol2col) where it fits and the layer is not 1x1x1 (GEMM then runs on the image
// itself); 'implicit' always runs it; 'gemm' runs vol2col + GEMM. Backward-data at unit stride
// (padding <= dil·(k-1)) runs the implicit forward on dy with flipped, transposed filters under
// the same rule, else vol2col + GEMM.
bool implicit_pays(const Conv3dParams& p, ConvAlgo algo, bool fits) {
  return algo == ConvAlgo::implicit ||
         (algo == ConvAlgo::automatic && fits && !cpu::conv3d_is_pointwise(p));
}

// y (N, C, L) += b[c] for every position (no-op when b is null).
template <class T>
void add_channel_bias(int64_t N, int64_t C, int64_t L, T* y, const T* b) {
  if (!b) return;
  for_each_item(N * C, get_num_threads(), [&](int64_t it, int) {
    const T bc = b[it % C];
    T* yc = y + it * L;
    for (int64_t i = 0; i < L; ++i) yc[i] += bc;
  });
}

}  // namespace

template <class T>
void conv3d_forward(const Conv3dParams& p, T* y, const T* x, const T* w, const T* b,
                    ConvAlgo algo) {
  if (algo == ConvAlgo::ref) return ref::conv3d_forward(p, y, x, w, b);
  if (is_winograd(algo) || (algo == ConvAlgo::automatic && cpu::winograd_pays(p, false)))
    return cpu::conv_forward_winograd(p, y, x, w, b, Activation::none, winograd_tile_of(algo));
  if (implicit_pays(p, algo, cpu::implicit_forward_fits(p)))
    return cpu::conv_forward_implicit(p, y, x, w, b);
  cpu::conv3d_forward_gemm(p, y, x, w, b);
}

template <class T>
void conv3d_backward_data(const Conv3dParams& p, T* dx, const T* dy, const T* w, ConvAlgo algo) {
  if (algo == ConvAlgo::ref) return ref::conv3d_backward_data(p, dx, dy, w);
  if (is_winograd(algo) || (algo == ConvAlgo::automatic && cpu::winograd_pays(p, true)))
    return cpu::conv_backward_data_winograd(p, dx, dy, w, winograd_tile_of(algo));
  const bool unit = cpu::implicit_data_applies(p);
  if ((unit || cpu::implicit_phases_apply(p)) &&
      implicit_pays(p, algo,
                    unit ? cpu::implicit_forward_fits(cpu::implicit_data_params(p))
                         : cpu::implicit_phases_pay(p, get_num_threads())))
    return cpu::conv_backward_data_implicit(p, dx, dy, w);
  cpu::conv3d_backward_data_gemm(p, dx, dy, w);
}

template <class T>
void conv3d_backward_weight(const Conv3dParams& p, T* dw, T* db, const T* dy, const T* x,
                            ConvAlgo algo) {
  if (algo == ConvAlgo::ref) return ref::conv3d_backward_weight(p, dw, db, dy, x);
  if (is_winograd(algo)) algo = ConvAlgo::implicit;
  if (implicit_pays(p, algo, cpu::implicit_weight_fits(p, get_num_threads())))
    return cpu::conv_backward_weight_implicit(p, dw, db, dy, x);
  cpu::conv3d_backward_weight_gemm(p, dw, db, dy, x);
}

// p is the adjoint conv: x (N, p.K, p.P, p.Q) → y (N, p.C, p.H, p.W).
template <class T>
void conv_transpose2d_forward(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                              ConvAlgo algo) {
  conv2d_backward_data(p, y, x, w, algo);
  add_channel_bias(p.N, p.C, p.H * p.W, y, b);
}

template <class T>
void conv_transpose2d_backward(const Conv2dParams& p, T* dx, T* dw, T* db, const T* dy,
                               const T* x, const T* w, ConvAlgo algo) {
  if (dx) conv2d_forward(p, dx, dy, w, static_cast<const T*>(nullptr), algo);
  if (dw) conv2d_backward_weight(p, dw, static_cast<T*>(nullptr), x, dy, algo);
  if (db) cpu::accumulate_channel_sums(p.N, p.C, p.H * p.W, db, dy);
}

template <class T>
void conv_transpose3d_forward(const Conv3dParams& p, T* y, const T* x, const T* w, const T* b,
                              ConvAlgo algo) {
  conv3d_backward_data(p, y, x, w, algo);
  add_channel_bias(p.N, p.C, p.in_volume(), y, b);
}

template <class T>
void conv_transpose3d_backward(const Conv3dParams& p, T* dx, T* dw, T* db, const T* dy,
                               const T* x, const T* w, ConvAlgo algo) {
  if (dx) conv3d_forward(p, dx, dy, w, static_cast<const T*>(nullptr), algo);
  if (dw) conv3d_backward_weight(p, dw, static_cast<T*>(nullptr), x, dy, algo);
  if (db) cpu::accumulate_channel_sums(p.N, p.C, p.in_volume(), db, dy);
}

// Tiled / locally connected: 'implicit' runs the implicit GEMM over each bank's positions
// (backward-data only at unit stride, else as 'gemm'); 'auto' does so where it pays (few banks
// with many positions each); otherwise (and for 'gemm') one GEMM per bank over gathered columns.
namespace {
bool tiled_implicit(const TiledConvParams& p, ConvAlgo algo) {
  return algo == ConvAlgo::implicit ||
         (algo == ConvAlgo::automatic && cpu::tiled_implicit_pays(p));
}
}  // namespace

template <class T>
void tiled_conv_forward(const TiledConvParams& p, T* y, const T* x, const T* w, const T* b,
                        ConvAlgo algo) {
  if (algo == ConvAlgo::ref) return ref::tiled_conv_forward(p, y, x, w, b);
  if (tiled_implicit(p, algo)) return cpu::tiled_conv_forward_implicit(p, y, x, w, b);
  cpu::tiled_conv_forward_gemm(p, y, x, w, b);
}

template <class T>
void tiled_conv_backward_data(const TiledConvParams& p, T* dx, const T* dy, const T* w,
                              ConvAlgo algo) {
  if (algo == ConvAlgo::ref) return ref::tiled_conv_backward_data(p, dx, dy, w);
  if (tiled_implicit(p, algo) && cpu::tiled_implicit_data_applies(p))
    return cpu::tiled_conv_backward_data_implicit(p, dx, dy, w);
  cpu::tiled_conv_backward_data_gemm(p, dx, dy, w);
}

template <class T>
void tiled_conv_backward_weight(const TiledConvParams& p, T* dw, T* db, const T* dy, const T* x,
                                ConvAlgo algo) {
  if (algo == ConvAlgo::ref) return ref::tiled_conv_backward_weight(p, dw, db, dy, x);
  if (!tiled_implicit(p, algo)) return cpu::tiled_conv_backward_weight_gemm(p, dw, db, dy, x);
  cpu::tiled_conv_backward_weight_implicit(p, dw, db, dy, x);
}

#define CNNFAST_INSTANTIATE(T, P, name)                                                          \
  template void name##_forward<T>(const P&, T*, const T*, const T*, const T*, ConvAlgo);
#define CNNFAST_INSTANTIATE_ALL(T)                                                               \
  CNNFAST_INSTANTIATE(T, Conv3dParams, conv3d)                                                   \
  CNNFAST_INSTANTIATE(T, Conv2dParams, conv_transpose2d)                                         \
  CNNFAST_INSTANTIATE(T, Conv3dParams, conv_transpose3d)                                         \
  CNNFAST_INSTANTIATE(T, TiledConvParams, tiled_conv)                                            \
  template void conv3d_backward_data<T>(const Conv3dParams&, T*, const T*, const T*, ConvAlgo);  \
  template void conv3d_backward_weight<T>(const Conv3dParams&, T*, T*, const T*, const T*,       \
                                          ConvAlgo);                                             \
  template void conv_transpose2d_backward<T>(const Conv2dParams&, T*, T*, T*, const T*,          \
                                             const T*, const T*, ConvAlgo);                      \
  template void conv_transpose3d_backward<T>(const Conv3dParams&, T*, T*, T*, const T*,          \
                                             const T*, const T*, ConvAlgo);                      \
  template void tiled_conv_backward_data<T>(const TiledConvParams&, T*, const T*, const T*,      \
                                            ConvAlgo);                                           \
  template void tiled_conv_backward_weight<T>(const TiledConvParams&, T*, T*, const T*,          \
                                              const T*, ConvAlgo);
CNNFAST_INSTANTIATE_ALL(float)
CNNFAST_INSTANTIATE_ALL(double)
#undef CNNFAST_INSTANTIATE_ALL
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast
