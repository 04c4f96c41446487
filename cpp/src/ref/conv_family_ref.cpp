// conv_family_ref.cpp — naive conv3d and tiled convolution:
//   conv3d: Z[n,k,o] = b[k] + Σ_{c,a,r,s} X[n, g·Cg+c, od·sd−pf+a·dd, oh·sh−pt+r·dh, ow·sw−pl+s·dw]
//                                         · W[k,c,a,r,s],   g = k / Kg
//   tiled:  the same with groups = 1 and W, b taken from bank (od mod TD, oh mod TH, ow mod TW);
//           locally connected bias is b[k, od, oh, ow]. Out-of-range input reads as zero.
#include "ref/conv_family_ref.h"

#include <algorithm>

namespace cnnfast::ref {
namespace {

// Calls f(n, k, o, xi, wi): o the flat output offset in (OD, OH, OW), xi the flat input index
// into x (N, C, D, H, W), wi the flat index of the tap into one bank's (K, Cg, KD, KH, KW)
// weight, for every in-bounds tap of every output.
template <class F>
void for_each_tap(const Conv3dParams& p, F&& f) {
  const int64_t Cg = p.Cg(), Kg = p.Kg();
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t od = 0; od < p.OD; ++od)
        for (int64_t oh = 0; oh < p.OH; ++oh)
          for (int64_t ow = 0; ow < p.OW; ++ow)
            for (int64_t c = 0; c < Cg; ++c)
              for (int64_t a = 0; a < p.KD; ++a) {
                const int64_t id = od * p.stride_d - p.pad_front + a * p.dil_d;
                if (id < 0 || id >= p.D) continue;
                for (int64_t r = 0; r < p.KH; ++r) {
                  const int64_t ih = oh * p.stride_h - p.pad_top + r * p.dil_h;
                  if (ih < 0 || ih >= p.H) continue;
                  for (int64_t s = 0; s < p.KW; ++s) {
                    const int64_t iw = ow * p.stride_w - p.pad_left + s * p.dil_w;
                    if (iw < 0 || iw >= p.W) continue;
                    const int64_t ci = (k / Kg) * Cg + c;
                    f(n, k, (od * p.OH + oh) * p.OW + ow,
                      (((n * p.C + ci) * p.D + id) * p.H + ih) * p.W + iw,
                      (((k * Cg + c) * p.KD + a) * p.KH + r) * p.KW + s);
                  }
                }
              }
}

// The bank of flat output offset o.
int64_t bank_of(const TiledConvParams& p, int64_t o) {
  const Conv3dParams& c = p.conv;
  const int64_t od = o / (c.OH * c.OW), oh = (o / c.OW) % c.OH, ow = o % c.OW;
  return ((od % p.TD) * p.TH + oh % p.TH) * p.TW + ow % p.TW;
}

}  // namespace

template <class T>
void conv3d_forward(const Conv3dParams& p, T* y, const T* x, const T* w, const T* b) {
  const int64_t out = p.out_volume();
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      std::fill(y + (n * p.K + k) * out, y + (n * p.K + k + 1) * out, b ? b[k] : T(0));
  for_each_tap(p, [&](int64_t n, int64_t k, int64_t o, int64_t xi, int64_t wi) {
    y[(n * p.K + k) * out + o] += x[xi] * w[wi];
  });
}

template <class T>
void conv3d_backward_data(const Conv3dParams& p, T* dx, const T* dy, const T* w) {
  std::fill(dx, dx + p.N * p.C * p.in_volume(), T(0));
  const int64_t out = p.out_volume();
  for_each_tap(p, [&](int64_t n, int64_t k, int64_t o, int64_t xi, int64_t wi) {
    dx[xi] += dy[(n * p.K + k) * out + o] * w[wi];
  });
}

template <class T>
void conv3d_backward_weight(const Conv3dParams& p, T* dw, T* db, const T* dy, const T* x) {
  const int64_t out = p.out_volume();
  if (dw)
    for_each_tap(p, [&](int64_t n, int64_t k, int64_t o, int64_t xi, int64_t wi) {
      dw[wi] += dy[(n * p.K + k) * out + o] * x[xi];
    });
  if (db)
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t k = 0; k < p.K; ++k)
        for (int64_t o = 0; o < out; ++o) db[k] += dy[(n * p.K + k) * out + o];
}

template <class T>
void tiled_conv_forward(const TiledConvParams& p, T* y, const T* x, const T* w, const T* b) {
  const Conv3dParams& c = p.conv;
  const int64_t out = c.out_volume(), bw = p.bank_weight_size();
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t k = 0; k < c.K; ++k)
      for (int64_t o = 0; o < out; ++o)
        y[(n * c.K + k) * out + o] =
            !b ? T(0) : p.bias_per_location ? b[k * out + o] : b[bank_of(p, o) * c.K + k];
  for_each_tap(c, [&](int64_t n, int64_t k, int64_t o, int64_t xi, int64_t wi) {
    y[(n * c.K + k) * out + o] += x[xi] * w[bank_of(p, o) * bw + wi];
  });
}

template <class T>
void tiled_conv_backward_data(const TiledConvParams& p, T* dx, const T* dy, const T* w) {
  const Conv3dParams& c = p.conv;
  const int64_t out = c.out_volume(), bw = p.bank_weight_size();
  std::fill(dx, dx + c.N * c.C * c.in_volume(), T(0));
  for_each_tap(c, [&](int64_t n, int64_t k, int64_t o, int64_t xi, int64_t wi) {
    dx[xi] += dy[(n * c.K + k) * out + o] * w[bank_of(p, o) * bw + wi];
  });
}

template <class T>
void tiled_conv_backward_weight(const TiledConvParams& p, T* dw, T* db, const T* dy, const T* x) {
  const Conv3dParams& c = p.conv;
  const int64_t out = c.out_volume(), bw = p.bank_weight_size();
  if (dw)
    for_each_tap(c, [&](int64_t n, int64_t k, int64_t o, int64_t xi, int64_t wi) {
      dw[bank_of(p, o) * bw + wi] += dy[(n * c.K + k) * out + o] * x[xi];
    });
  if (db)
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t k = 0; k < c.K; ++k)
        for (int64_t o = 0; o < out; ++o)
          (p.bias_per_location ? db[k * out + o] : db[bank_of(p, o) * c.K + k]) +=
              dy[(n * c.K + k) * out + o];
}

#define CNNFAST_INSTANTIATE(T)                                                                    \
  template void conv3d_forward<T>(const Conv3dParams&, T*, const T*, const T*, const T*);         \
  template void conv3d_backward_data<T>(const Conv3dParams&, T*, const T*, const T*);             \
  template void conv3d_backward_weight<T>(const Conv3dParams&, T*, T*, const T*, const T*);       \
  template void tiled_conv_forward<T>(const TiledConvParams&, T*, const T*, const T*, const T*);  \
  template void tiled_conv_backward_data<T>(const TiledConvParams&, T*, const T*, const T*);      \
  template void tiled_conv_backward_weight<T>(const TiledConvParams&, T*, T*, const T*, const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::ref
