// vol2col.cpp — chunked vol2col / col2vol over a strided position grid (layout in vol2col.h),
// row by row (each column row is written sequentially), and patch2col for one window per image.
#include "cpu/vol2col.h"

#include <algorithm>
#include <cstring>

#include "cpu/strided_add.h"

namespace cnnfast::cpu {
namespace {

// Valid q in [q0, q1): 0 <= off + q*step < W. Returns [lo, hi) with q0 <= lo <= hi <= q1.
inline void valid_range(int64_t q0, int64_t q1, int64_t step, int64_t off, int64_t W, int64_t& lo,
                        int64_t& hi) {
  lo = off >= 0 ? q0 : std::max(q0, (-off + step - 1) / step);
  hi = W - off <= 0 ? q0 : std::min(q1, (W - off - 1) / step + 1);
  lo = std::min(lo, q1);
  if (hi < lo) hi = lo;
}

// Walks the chunk [j0, j0 + len) of the grid in runs along w: f(t, u, v, q0, q1) for each run of
// positions (u, v, q0..q1) whose first one is column t.
template <class F>
void for_each_w_run(const Grid3& g, int64_t j0, int64_t len, F&& f) {
  const int64_t HW = g.count[1] * g.count[2];
  int64_t u = j0 / HW, v = (j0 % HW) / g.count[2], q = j0 % g.count[2], t = 0;
  while (t < len) {
    const int64_t seg = std::min(g.count[2] - q, len - t);
    f(t, u, v, q, q + seg);
    t += seg;
    q = 0;
    if (++v == g.count[1]) v = 0, ++u;
  }
}

// Calls f(row_index, a, r, s) for every kernel tap, c outermost (row = ((c*KD + a)*KH + r)*KW + s).
template <class F>
void for_each_row(const Conv3dParams& p, F&& f) {
  int64_t row = 0;
  for (int64_t c = 0; c < p.Cg(); ++c)
    for (int64_t a = 0; a < p.KD; ++a)
      for (int64_t r = 0; r < p.KH; ++r)
        for (int64_t s = 0; s < p.KW; ++s) f(row++, c, a, r, s);
}

}  // namespace

Grid3 output_grid(const Conv3dParams& p) {
  return Grid3{{-p.pad_front, -p.pad_top, -p.pad_left},
               {p.stride_d, p.stride_h, p.stride_w},
               {p.OD, p.OH, p.OW}};
}

template <class T>
void vol2col(const Conv3dParams& p, const Grid3& g, const T* x, int64_t j0, int64_t len, T* col,
             int64_t ldcol) {
  for_each_row(p, [&](int64_t row, int64_t c, int64_t a, int64_t r, int64_t s) {
    T* dst = col + row * ldcol;
    const int64_t off = g.origin[2] + s * p.dil_w, sw = g.step[2];
    for_each_w_run(g, j0, len, [&](int64_t t, int64_t u, int64_t v, int64_t q0, int64_t q1) {
      T* d = dst + t - q0;  // d[q] is the column of grid position (u, v, q)
      const int64_t id = g.origin[0] + u * g.step[0] + a * p.dil_d;
      const int64_t ih = g.origin[1] + v * g.step[1] + r * p.dil_h;
      if (id < 0 || id >= p.D || ih < 0 || ih >= p.H) {
        std::fill(d + q0, d + q1, T(0));
        return;
      }
      const T* line = x + ((c * p.D + id) * p.H + ih) * p.W;
      int64_t lo, hi;
      valid_range(q0, q1, sw, off, p.W, lo, hi);
      std::fill(d + q0, d + lo, T(0));
      if (sw == 1) {
        if (hi > lo) std::memcpy(d + lo, line + lo + off, sizeof(T) * (hi - lo));
      } else {
        for (int64_t q = lo; q < hi; ++q) d[q] = line[q * sw + off];
      }
      std::fill(d + hi, d + q1, T(0));
    });
  });
}

template <class T>
void col2vol_add(const Conv3dParams& p, const Grid3& g, const T* col, int64_t j0, int64_t len,
                 int64_t ldcol, T* dx) {
  for_each_row(p, [&](int64_t row, int64_t c, int64_t a, int64_t r, int64_t s) {
    const T* src = col + row * ldcol;
    const int64_t off = g.origin[2] + s * p.dil_w, sw = g.step[2];
    for_each_w_run(g, j0, len, [&](int64_t t, int64_t u, int64_t v, int64_t q0, int64_t q1) {
      const int64_t id = g.origin[0] + u * g.step[0] + a * p.dil_d;
      const int64_t ih = g.origin[1] + v * g.step[1] + r * p.dil_h;
      if (id < 0 || id >= p.D || ih < 0 || ih >= p.H) return;
      const T* sv = src + t - q0;
      T* line = dx + ((c * p.D + id) * p.H + ih) * p.W;
      int64_t lo, hi;
      valid_range(q0, q1, sw, off, p.W, lo, hi);
      strided_add(line + off, sv, lo, hi, sw);
    });
  });
}

namespace {
// Calls f(row, offset) for every tap: offset of the tap's input element within an image, or -1
// when it lies in the padding.
template <class F>
void for_each_patch_tap(const Conv3dParams& p, const int64_t at[3], F&& f) {
  int64_t row = 0;
  for (int64_t c = 0; c < p.Cg(); ++c)
    for (int64_t a = 0; a < p.KD; ++a) {
      const int64_t id = at[0] + a * p.dil_d;
      for (int64_t r = 0; r < p.KH; ++r) {
        const int64_t ih = at[1] + r * p.dil_h;
        const bool in_dh = id >= 0 && id < p.D && ih >= 0 && ih < p.H;
        for (int64_t s = 0; s < p.KW; ++s) {
          const int64_t iw = at[2] + s * p.dil_w;
          f(row++, in_dh && iw >= 0 && iw < p.W ? ((c * p.D + id) * p.H + ih) * p.W + iw : -1);
        }
      }
    }
}
}  // namespace

template <class T>
void patch2col(const Conv3dParams& p, const int64_t at[3], const T* x, int64_t elem_stride,
               int64_t image_stride, int64_t count, T* col, int64_t ldcol) {
  for_each_patch_tap(p, at, [&](int64_t row, int64_t off) {
    T* d = col + row * ldcol;
    if (off < 0) {
      std::fill(d, d + count, T(0));
      return;
    }
    const T* src = x + off * elem_stride;
    if (image_stride == 1) {
      std::memcpy(d, src, sizeof(T) * count);
      return;
    }
    for (int64_t i = 0; i < count; ++i) d[i] = src[i * image_stride];
  });
}

template <class T>
void col2patch_add(const Conv3dParams& p, const int64_t at[3], const T* col, int64_t ldcol,
                   int64_t count, int64_t elem_stride, int64_t image_stride, T* dx) {
  for_each_patch_tap(p, at, [&](int64_t row, int64_t off) {
    if (off < 0) return;
    const T* s = col + row * ldcol;
    T* dst = dx + off * elem_stride;
    for (int64_t i = 0; i < count; ++i) dst[i * image_stride] += s[i];
  });
}

#define CNNFAST_INSTANTIATE(T)                                                                   \
  template void vol2col<T>(const Conv3dParams&, const Grid3&, const T*, int64_t, int64_t, T*,    \
                           int64_t);                                                             \
  template void col2vol_add<T>(const Conv3dParams&, const Grid3&, const T*, int64_t, int64_t,    \
                               int64_t, T*);                                                \
  template void patch2col<T>(const Conv3dParams&, const int64_t*, const T*, int64_t, int64_t,    \
                             int64_t, T*, int64_t);                                              \
  template void col2patch_add<T>(const Conv3dParams&, const int64_t*, const T*, int64_t,         \
                                 int64_t, int64_t, int64_t, T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
