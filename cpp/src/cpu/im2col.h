// im2col.h — lowering of one (image, group) to columns, a chunk of output positions at a time,
// so the workspace stays bounded whatever the image size.
//   x  is (Cg, H, W) — one image's channels of one group
//   col is (Cg*R*S, len): col[(c*R + r)*S + s][t] = x[c][ih][iw] for output position j0 + t,
//   with ih = i*sh - pt + r*dh, iw = q*sw - pl + s*dw (zero outside the image)
#pragma once
#include <cstdint>

#include "cnnfast/conv.h"

namespace cnnfast {

// col with column rows ldcol >= len apart (several images side by side: ldcol > len).
template <class T>
void im2col_ld(const Conv2dParams& p, const T* x, int64_t j0, int64_t len, T* col, int64_t ldcol);

// The adjoint: dx[c][ih][iw] += col[(c*R + r)*S + s][t] (dx not cleared); ldcol = len, or given.
template <class T>
void col2im_add(const Conv2dParams& p, const T* col, int64_t j0, int64_t len, T* dx);
template <class T>
void col2im_add_ld(const Conv2dParams& p, const T* col, int64_t j0, int64_t len, int64_t ldcol,
                   T* dx);

}  // namespace cnnfast
