// conv_implicit_data.cpp — backward-data of a unit-stride convolution (2-D or 3-D) as the implicit
// GEMM forward: dx = conv(dy, w') with w' the filters flipped in space and transposed per group
//   w (K, Cg, KD, KH, KW) -> w' (C, Kg, KD, KH, KW),  w'[g·Cg + c, k, a, r, s] =
//                                                      w[g·Kg + k, c, KD-1-a, KH-1-r, KW-1-s]
// and padding dil·(k-1) - pad on each side (the 'full' correlation cropped to the input). No
// column matrix and no col2im scatter: the dilated case, col2im-bound on the GEMM path, runs at
// forward speed.
#include "cnnfast/checked.h"
#include "cnnfast/runtime.h"
#include "cpu/conv_implicit.h"
#include "cpu/parallel.h"
#include "cpu/workspace.h"

namespace cnnfast::cpu {

namespace {
bool fits_padding(int64_t pad, int64_t dil, int64_t k) { return pad <= dil * (k - 1); }
}  // namespace

bool implicit_data_applies(const Conv3dParams& p) {
  return p.stride_d == 1 && p.stride_h == 1 && p.stride_w == 1 &&
         fits_padding(p.pad_front, p.dil_d, p.KD) && fits_padding(p.pad_back, p.dil_d, p.KD) &&
         fits_padding(p.pad_top, p.dil_h, p.KH) && fits_padding(p.pad_bottom, p.dil_h, p.KH) &&
         fits_padding(p.pad_left, p.dil_w, p.KW) && fits_padding(p.pad_right, p.dil_w, p.KW);
}

Conv3dParams implicit_data_params(const Conv3dParams& p) {
  Conv3dParams q = p;
  q.C = p.K, q.D = p.OD, q.H = p.OH, q.W = p.OW;  // input: dy
  q.K = p.C, q.OD = p.D, q.OH = p.H, q.OW = p.W;  // output: dx
  q.pad_front = p.dil_d * (p.KD - 1) - p.pad_front, q.pad_back = p.dil_d * (p.KD - 1) - p.pad_back;
  q.pad_top = p.dil_h * (p.KH - 1) - p.pad_top, q.pad_bottom = p.dil_h * (p.KH - 1) - p.pad_bottom;
  q.pad_left = p.dil_w * (p.KW - 1) - p.pad_left, q.pad_right = p.dil_w * (p.KW - 1) - p.pad_right;
  return q;
}

// That forward's filters: w (K, Cg, KD, KH, KW) -> wt (C, Kg, KD, KH, KW), flipped on every
// axis and transposed per group. (Winograd reads w that way in its filter transform instead.)
template <class T>
void flip_transpose_filters(const Conv3dParams& p, const T* w, T* wt) {
  const int64_t Cg = p.Cg(), Kg = p.Kg(), taps = p.taps();
  // One output row (g, c) per item, written in order (serial, 512x512x3x3 took a few ms).
  for_each_item(p.groups * Cg, get_num_threads(), [&](int64_t gc, int) {
    const int64_t g = gc / Cg, c = gc % Cg;
    for (int64_t k = 0; k < Kg; ++k) {
      const T* src = w + ((g * Kg + k) * Cg + c) * taps;  // (KD, KH, KW)
      T* dst = wt + (gc * Kg + k) * taps;
      for (int64_t t = 0; t < taps; ++t) dst[t] = src[taps - 1 - t];  // flip all three axes
    }
  });
}

template <class T>
void conv_backward_data_implicit(const Conv3dParams& p, T* dx, const T* dy, const T* w) {
  if (!implicit_data_applies(p)) return conv_backward_data_phases(p, dx, dy, w);
  T* wt = thread_scratch<T>(Scratch::weights2, checked_mul(p.C * p.Kg(), p.taps()));
  flip_transpose_filters(p, w, wt);  // (C, Kg, KD, KH, KW)
  conv_forward_implicit(implicit_data_params(p), dx, dy, static_cast<const T*>(wt),
                        static_cast<const T*>(nullptr));
}

#define CNNFAST_INSTANTIATE(T)                                                                  \
  template void flip_transpose_filters<T>(const Conv3dParams&, const T*, T*);                    \
  template void conv_backward_data_implicit<T>(const Conv3dParams&, T*, const T*, const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
