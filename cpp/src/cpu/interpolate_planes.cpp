// interpolate_planes.cpp — fast nearest/linear interpolation loops, OpenMP over output rows
// (forward: each output reads its 1, 2, 4 or 8 taps from per-dim tables) and over planes
// (backward: each plane scatters in raster order, deterministic). Weights are per-dim products.
#include <algorithm>
#include <vector>

#include "cnnfast/runtime.h"
#include "cpu/parallel.h"
#include "cpu/pool_planes.h"

namespace cnnfast::cpu {

template <class T>
void interpolate_forward_planes(const InterpParams& p, T* y, const T* x) {
  const std::vector<InterpTap> td = interp_taps(p, 0), th = interp_taps(p, 1), tw = interp_taps(p, 2);
  const int64_t OD = p.out[0], OH = p.out[1], OW = p.out[2], H = p.in[1], W = p.in[2];
  const int64_t in_plane = p.in[0] * H * W;
  const bool nearest = p.mode == InterpMode::nearest;
  for_each_item(p.planes() * OD * OH, get_num_threads(), [&](int64_t item, int) {
    const int64_t pl = item / (OD * OH), od = item / OH % OD, oh = item % OH;
    T* yr = y + item * OW;  // (OW,) one output row
    const T* xp = x + pl * in_plane;
    const InterpTap &a = td[od], &b = th[oh];
    if (nearest) {
      const T* src = xp + (a.i0 * H + b.i0) * W;
      for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = src[tw[ow].i0];
      return;
    }
    // The source rows: both taps of every interpolated dim, zero weights included (PyTorch's
    // arithmetic: 0 · inf = NaN there too), but only the first of a padding dim, which the
    // op does not have (a 2-D op's depth made bilinear turn an inf into NaN).
    const T* rows[4];
    T wr[4];
    int nr = 0;
    const int nd_d = p.nd < 3 ? 1 : 2, nd_h = p.nd < 2 ? 1 : 2;
    const double wd[2] = {1 - a.lambda, a.lambda}, wh[2] = {1 - b.lambda, b.lambda};
    const int64_t id[2] = {a.i0, a.i1}, ih[2] = {b.i0, b.i1};
    for (int i = 0; i < nd_d; ++i)
      for (int j = 0; j < nd_h; ++j) {
        rows[nr] = xp + (id[i] * H + ih[j]) * W;
        wr[nr++] = T(wd[i] * wh[j]);
      }
    for (int64_t ow = 0; ow < OW; ++ow) {
      const InterpTap& c = tw[ow];
      const T l1 = T(c.lambda), l0 = T(1 - c.lambda);
      T acc = 0;
      for (int r = 0; r < nr; ++r) acc += wr[r] * (l0 * rows[r][c.i0] + l1 * rows[r][c.i1]);
      yr[ow] = acc;
    }
  });
}

template <class T>
void interpolate_backward_planes(const InterpParams& p, T* dx, const T* dy) {
  const std::vector<InterpTap> td = interp_taps(p, 0), th = interp_taps(p, 1), tw = interp_taps(p, 2);
  const int64_t OD = p.out[0], OH = p.out[1], OW = p.out[2], H = p.in[1], W = p.in[2];
  const int64_t in_plane = p.in[0] * H * W, out_plane = OD * OH * OW;
  const bool nearest = p.mode == InterpMode::nearest;
  for_each_item(p.planes(), get_num_threads(), [&](int64_t pl, int) {
    T* dxp = dx + pl * in_plane;  // (D, H, W) one plane
    std::fill(dxp, dxp + in_plane, T(0));
    for (int64_t od = 0; od < OD; ++od)
      for (int64_t oh = 0; oh < OH; ++oh) {
        const T* g = dy + pl * out_plane + (od * OH + oh) * OW;
        const InterpTap &a = td[od], &b = th[oh];
        T* rows[4] = {dxp + (a.i0 * H + b.i0) * W, dxp + (a.i0 * H + b.i1) * W,
                      dxp + (a.i1 * H + b.i0) * W, dxp + (a.i1 * H + b.i1) * W};
        const T wr[4] = {T((1 - a.lambda) * (1 - b.lambda)), T((1 - a.lambda) * b.lambda),
                         T(a.lambda * (1 - b.lambda)), T(a.lambda * b.lambda)};
        for (int r = 0; r < 4; ++r) {
          if (wr[r] == T(0)) continue;  // nearest, or an exact grid position: no contribution
          for (int64_t ow = 0; ow < OW; ++ow) {
            const InterpTap& c = tw[ow];
            const T v = g[ow] * wr[r];
            rows[r][c.i0] += v * T(1 - c.lambda);
            // nearest has no second tap (an inf gradient stays inf, as PyTorch's)
            if (!nearest) rows[r][c.i1] += v * T(c.lambda);
          }
        }
      }
  });
}

#define CNNFAST_INSTANTIATE(T)                                                        \
  template void interpolate_forward_planes<T>(const InterpParams&, T*, const T*);     \
  template void interpolate_backward_planes<T>(const InterpParams&, T*, const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
