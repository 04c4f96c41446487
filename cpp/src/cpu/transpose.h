// transpose.h — a cache-blocked matrix transpose (no threads, no allocation):
//   dst[c * ldd + r] = src[r * lds + c]   for r < rows, c < cols
// Column blocks of src are read row by row as contiguous runs while the block's (cols, rows)
// image in dst — a few KiB — takes the strided writes in L1. The naive column walk reads src at a
// stride of lds: with a power-of-two row length (conv1d's 4096 positions) every row falls in the
// same cache set and each read missed (perf: 16 % of a conv1d weight gradient).
#pragma once
#include <algorithm>
#include <cstdint>

namespace cnnfast::cpu {

template <class T>
inline void transpose_blocked(int64_t rows, int64_t cols, const T* src, int64_t lds, T* dst,
                              int64_t ldd) {
  constexpr int64_t kBlockBytes = 16 * 1024;  // the dst block of one column block
  const int64_t block = std::clamp<int64_t>(
      kBlockBytes / (std::max<int64_t>(ldd, 1) * static_cast<int64_t>(sizeof(T))), 8, 256);
  for (int64_t c0 = 0; c0 < cols; c0 += block) {
    const int64_t cn = std::min(block, cols - c0);
    for (int64_t r = 0; r < rows; ++r) {
      const T* s = src + r * lds + c0;
      T* d = dst + c0 * ldd + r;
      for (int64_t c = 0; c < cn; ++c) d[c * ldd] = s[c];
    }
  }
}

}  // namespace cnnfast::cpu
