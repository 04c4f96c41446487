// vol2col.h — 3-D im2col over a strided grid of output positions, a chunk at a time (bounded
// workspace). Serves conv3d (grid = the output) and tiled convolution (grid = one bank's
// positions: origin shifted by the bank, step multiplied by the tile).
//   x   is (Cg, D, H, W) — one image's channels of one group
//   col is (Cg*KD*KH*KW, ldcol), columns [0, len) written:
//     col[((c*KD + a)*KH + r)*KW + s][t] = x[c][id][ih][iw] for grid position j0 + t = (u, v, q),
//     id = origin_d + u*step_d + a*dil_d (likewise h, w); zero outside the input.
#pragma once
#include <cstdint>

#include "cnnfast/conv_family.h"

namespace cnnfast::cpu {

struct Grid3 {
  int64_t origin[3];  // input coordinate of grid position 0 at tap 0 (may be negative)
  int64_t step[3];    // input distance between neighbouring grid positions
  int64_t count[3];   // grid extent (positions along d, h, w)
  int64_t size() const { return count[0] * count[1] * count[2]; }
};

// The grid of a plain convolution: every output position.
Grid3 output_grid(const Conv3dParams& p);

template <class T>
void vol2col(const Conv3dParams& p, const Grid3& g, const T* x, int64_t j0, int64_t len, T* col,
             int64_t ldcol);
// The adjoint: dx[c][id][ih][iw] += col[row][t] (dx not cleared).
template <class T>
void col2vol_add(const Conv3dParams& p, const Grid3& g, const T* col, int64_t j0, int64_t len,
                 int64_t ldcol, T* dx);

// One window for `count` images at once (the locally connected case: one position per image):
//   col[row][i] = x[off(c, at_d + a*dil_d, at_h + r*dil_h, at_w + s*dil_w)*elem_stride
//                   + i*image_stride]
// with off the element's index within one (Cg, D, H, W) image. Images in x either one after the
// other (elem_stride 1, image_stride C*D*H*W) or batch-last (elem_stride N, image_stride 1).
template <class T>
void patch2col(const Conv3dParams& p, const int64_t at[3], const T* x, int64_t elem_stride,
               int64_t image_stride, int64_t count, T* col, int64_t ldcol);
// The adjoint: dx[off*elem_stride + i*image_stride] += col[row][i].
template <class T>
void col2patch_add(const Conv3dParams& p, const int64_t at[3], const T* col, int64_t ldcol,
                   int64_t count, int64_t elem_stride, int64_t image_stride, T* dx);

}  // namespace cnnfast::cpu
