// strided_add.h — row[q·step] += src[q] for q in [lo, hi): the scatter-add of col2im / col2vol.
// Step 2 (the transposed k4 s2 convolutions of U-Net / DCGAN decoders) is written as pairs
// row[2q] += src[q], row[2q + 1] += 0 so the compiler vectorizes it as contiguous loads and
// stores (dx starts at +0 and only accumulates, so adding +0 leaves every bit as it was); the
// last pair's odd element is left alone so nothing past row[2(hi − 1)] is touched. The scalar
// stride-2 loop was 44 % of a conv_transpose3d forward.
#pragma once
#include <cstdint>

namespace cnnfast::cpu {

template <class T>
inline void strided_add(T* __restrict row, const T* __restrict src, int64_t lo, int64_t hi,
                        int64_t step) {
  if (step == 1) {
    for (int64_t q = lo; q < hi; ++q) row[q] += src[q];
  } else if (step == 2) {
    if (hi <= lo) return;
    for (int64_t q = lo; q < hi - 1; ++q) {
      row[2 * q] += src[q];
      row[2 * q + 1] += T(0);
    }
    row[2 * (hi - 1)] += src[hi - 1];
  } else {
    for (int64_t q = lo; q < hi; ++q) row[q * step] += src[q];
  }
}

}  // namespace cnnfast::cpu
