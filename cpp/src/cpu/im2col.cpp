// im2col.cpp — chunked im2col / col2im for conv2d (see im2col.h for the layout).
#include "cpu/im2col.h"

#include <algorithm>
#include <cstring>

namespace cnnfast {
namespace {

// Valid q in [q0, q1): 0 <= q*sw + off < W. Returns [lo, hi) with q0 <= lo <= hi <= q1.
inline void valid_q(int64_t q0, int64_t q1, int64_t sw, int64_t off, int64_t W, int64_t& lo,
                    int64_t& hi) {
  lo = off >= 0 ? q0 : std::max(q0, (-off + sw - 1) / sw);
  hi = W - off <= 0 ? q0 : std::min(q1, (W - off - 1) / sw + 1);
  lo = std::min(lo, q1);
  if (hi < lo) hi = lo;
}

// Walks the chunk's output rows: g(t, i, q0, q1) for each run of positions sharing output row i.
template <class G>
void for_each_row_run(const Conv2dParams& p, int64_t j0, int64_t len, G&& g) {
  int64_t i = j0 / p.Q, q = j0 % p.Q, t = 0;
  while (t < len) {
    const int64_t seg = std::min(p.Q - q, len - t);
    g(t, i, q, q + seg);
    t += seg;
    q = 0;
    ++i;
  }
}

}  // namespace

template <class T>
void im2col(const Conv2dParams& p, const T* x, int64_t j0, int64_t len, T* col) {
  const int64_t Cg = p.Cg(), sw = p.stride_w;
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s) {
        T* dst = col + ((c * p.R + r) * p.S + s) * len;
        const int64_t off = s * p.dil_w - p.pad_left;
        for_each_row_run(p, j0, len, [&](int64_t t, int64_t i, int64_t q0, int64_t q1) {
          T* d = dst + t - q0;  // d[q] is the column entry of output column q
          const int64_t ih = i * p.stride_h - p.pad_top + r * p.dil_h;
          if (ih < 0 || ih >= p.H) {
            std::fill(d + q0, d + q1, T(0));
            return;
          }
          const T* row = x + (c * p.H + ih) * p.W;
          int64_t lo, hi;
          valid_q(q0, q1, sw, off, p.W, lo, hi);
          std::fill(d + q0, d + lo, T(0));
          if (sw == 1) {
            if (hi > lo) std::memcpy(d + lo, row + lo + off, sizeof(T) * (hi - lo));
          } else {
            for (int64_t q = lo; q < hi; ++q) d[q] = row[q * sw + off];
          }
          std::fill(d + hi, d + q1, T(0));
        });
      }
}

template <class T>
void col2im_add(const Conv2dParams& p, const T* col, int64_t j0, int64_t len, T* dx) {
  const int64_t Cg = p.Cg(), sw = p.stride_w;
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s) {
        const T* src = col + ((c * p.R + r) * p.S + s) * len;
        const int64_t off = s * p.dil_w - p.pad_left;
        for_each_row_run(p, j0, len, [&](int64_t t, int64_t i, int64_t q0, int64_t q1) {
          const int64_t ih = i * p.stride_h - p.pad_top + r * p.dil_h;
          if (ih < 0 || ih >= p.H) return;
          const T* s_ = src + t - q0;
          T* row = dx + (c * p.H + ih) * p.W;
          int64_t lo, hi;
          valid_q(q0, q1, sw, off, p.W, lo, hi);
          for (int64_t q = lo; q < hi; ++q) row[q * sw + off] += s_[q];
        });
      }
}

template void im2col<float>(const Conv2dParams&, const float*, int64_t, int64_t, float*);
template void im2col<double>(const Conv2dParams&, const double*, int64_t, int64_t, double*);
template void col2im_add<float>(const Conv2dParams&, const float*, int64_t, int64_t, float*);
template void col2im_add<double>(const Conv2dParams&, const double*, int64_t, int64_t, double*);

}  // namespace cnnfast
