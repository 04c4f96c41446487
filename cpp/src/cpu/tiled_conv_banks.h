// tiled_conv_banks.h — the banks of tiled convolution (tiled_conv_gemm.cpp): bank β = (bd, bh,
// bw) owns the output positions (bd + TD·u, bh + TH·v, bw + TW·q), a strided grid of the input;
// walks over a bank's columns (image, grid position) and over its output offsets.
#pragma once
#include <algorithm>
#include <cstdint>

#include "cnnfast/conv_family.h"
#include "cpu/vol2col.h"

namespace cnnfast::cpu {

struct Bank {
  int64_t index;   // (bd*TH + bh)*TW + bw
  int64_t at[3];   // (bd, bh, bw)
  Grid3 grid;      // its output positions as a strided input grid
};

inline Bank make_bank(const TiledConvParams& p, int64_t index) {
  const Conv3dParams& c = p.conv;
  const int64_t tile[3] = {p.TD, p.TH, p.TW}, out[3] = {c.OD, c.OH, c.OW};
  const int64_t stride[3] = {c.stride_d, c.stride_h, c.stride_w};
  const int64_t pad[3] = {c.pad_front, c.pad_top, c.pad_left};
  Bank b{index, {index / (p.TH * p.TW), (index / p.TW) % p.TH, index % p.TW}, {}};
  for (int i = 0; i < 3; ++i) {
    b.grid.origin[i] = b.at[i] * stride[i] - pad[i];
    b.grid.step[i] = tile[i] * stride[i];
    b.grid.count[i] = b.at[i] < out[i] ? (out[i] - b.at[i] + tile[i] - 1) / tile[i] : 0;
  }
  return b;
}

// The flat output offset of a bank's first position (its only one when locally connected).
inline int64_t first_position(const TiledConvParams& p, const Bank& b) {
  return (b.at[0] * p.conv.OH + b.at[1]) * p.conv.OW + b.at[2];
}

// Columns [c0, c0 + len) of a bank over images n0.. (column = (image, grid position)): calls
// f(t, n, j, seg) for each run of `seg` grid positions j.. of image n starting at column t.
template <class F>
void for_each_image_segment(const Bank& b, int64_t n0, int64_t c0, int64_t len, F&& f) {
  const int64_t gs = b.grid.size();
  for (int64_t t = 0; t < len;) {
    const int64_t n = n0 + (c0 + t) / gs, j = (c0 + t) % gs, seg = std::min(gs - j, len - t);
    f(t, n, j, seg);
    t += seg;
  }
}

// Calls f(t, o) for each of the seg grid positions j.. (column t) with o its flat output offset.
template <class F>
void for_each_position(const TiledConvParams& p, const Bank& b, int64_t j, int64_t seg, F&& f) {
  if (seg <= 0) return;  // also: a bank with no positions (tile larger than the output)
  const Conv3dParams& c = p.conv;
  const int64_t cv = b.grid.count[1], cq = b.grid.count[2];
  int64_t u = j / (cv * cq), v = (j / cq) % cv, q = j % cq;
  for (int64_t t = 0; t < seg; ++t) {
    f(t, ((b.at[0] + p.TD * u) * c.OH + b.at[1] + p.TH * v) * c.OW + b.at[2] + p.TW * q);
    if (++q == cq) {
      q = 0;
      if (++v == cv) v = 0, ++u;
    }
  }
}

// Locally connected (every bank has at most one position per image): the columns of a bank are
// one window of every image, gathered from a batch-last copy of the input, xt (C*D*H*W, N),
// where each window element is a contiguous run over the images.
inline bool one_position_per_bank(const TiledConvParams& p) {
  return p.TD >= p.conv.OD && p.TH >= p.conv.OH && p.TW >= p.conv.OW;
}

}  // namespace cnnfast::cpu
