#include "cpu/im2col.h"

#include <algorithm>

#include "cpu/strided_add.h"

namespace cnnfast {
namespace {

// Output columns q in [lo, hi) read inside the image: 0 <= q*sw + off < W (0 <= lo <= hi <= Q).
// Depends only on the kernel column, so callers compute it once per (c, r, s), not per row.
inline void valid_q(int64_t Q, int64_t sw, int64_t off, int64_t W, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : std::min(Q, (-off + sw - 1) / sw);
  hi = W - off <= 0 ? 0 : std::min(Q, (W - off - 1) / sw + 1);
  if (hi < lo) hi = lo;
}

// The chunk's output rows: g(t, i, q0, q1) for each run of positions sharing output row i.
// The start row/column are computed once by the caller (one division per chunk).
template <class G>
void for_each_row_run(const Conv2dParams& p, int64_t i, int64_t q, int64_t len, G&& g) {
  for (int64_t t = 0; t < len; ++i, q = 0) {
    const int64_t seg = std::min(p.Q - q, len - t);
    g(t, i, q, q + seg);
    t += seg;
  }
}

}  // namespace

template <class T>
void im2col_ld(const Conv2dParams& p, const T* x, int64_t j0, int64_t len, T* col, int64_t ldcol) {
  const int64_t Cg = p.Cg(), sw = p.stride_w, i0 = j0 / p.Q, q0_ = j0 % p.Q;
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s) {
        T* dst = col + ((c * p.R + r) * p.S + s) * ldcol;
        const int64_t off = s * p.dil_w - p.pad_left;
        int64_t vlo, vhi;
        valid_q(p.Q, sw, off, p.W, vlo, vhi);
        for_each_row_run(p, i0, q0_, len, [&](int64_t t, int64_t i, int64_t q0, int64_t q1) {
          T* d = dst + t - q0;  // d[q] is the column entry of output column q
          const int64_t ih = i * p.stride_h - p.pad_top + r * p.dil_h;
          if (ih < 0 || ih >= p.H) {
            for (int64_t q = q0; q < q1; ++q) d[q] = T(0);
            return;
          }
          const T* src = x + (c * p.H + ih) * p.W + off;  // src[q*sw] is input column q*sw+off
          const int64_t lo = std::min(std::max(vlo, q0), q1), hi = std::max(std::min(vhi, q1), lo);
          for (int64_t q = q0; q < lo; ++q) d[q] = T(0);
          if (sw == 1) {
            for (int64_t q = lo; q < hi; ++q) d[q] = src[q];
          } else {
            for (int64_t q = lo; q < hi; ++q) d[q] = src[q * sw];
          }
          for (int64_t q = hi; q < q1; ++q) d[q] = T(0);
        });
      }
}

template <class T>
void col2im_add_ld(const Conv2dParams& p, const T* col, int64_t j0, int64_t len, int64_t ldcol,
                   T* dx) {
  const int64_t Cg = p.Cg(), sw = p.stride_w, i0 = j0 / p.Q, q0_ = j0 % p.Q;
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s) {
        const T* src = col + ((c * p.R + r) * p.S + s) * ldcol;
        const int64_t off = s * p.dil_w - p.pad_left;
        int64_t vlo, vhi;
        valid_q(p.Q, sw, off, p.W, vlo, vhi);
        for_each_row_run(p, i0, q0_, len, [&](int64_t t, int64_t i, int64_t q0, int64_t q1) {
          const int64_t ih = i * p.stride_h - p.pad_top + r * p.dil_h;
          if (ih < 0 || ih >= p.H) return;
          const T* s_ = src + t - q0;
          T* row = dx + (c * p.H + ih) * p.W + off;
          const int64_t lo = std::min(std::max(vlo, q0), q1), hi = std::max(std::min(vhi, q1), lo);
          cpu::strided_add(row, s_, lo, hi, sw);
        });
      }
}

template <class T>
void col2im_add(const Conv2dParams& p, const T* col, int64_t j0, int64_t len, T* dx) {
  col2im_add_ld(p, col, j0, len, len, dx);
}

#define CNNFAST_INSTANTIATE(T)                                                                  \
  template void col2im_add<T>(const Conv2dParams&, const T*, int64_t, int64_t, T*);              \
  template void im2col_ld<T>(const Conv2dParams&, const T*, int64_t, int64_t, T*, int64_t);      \
  template void col2im_add_ld<T>(const Conv2dParams&, const T*, int64_t, int64_t, int64_t, T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast
