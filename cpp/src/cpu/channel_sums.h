// channel_sums.h — the bias gradient every convolution shares: db[c] += Σ_{n, i} dy[n, c, i].
// One thread sums each channel in a fixed order, so the result is the same at any thread count:
// 16 running partial sums (element i of a row goes to sum i mod 16 of its 16-block, the row's
// tail to sums 0..) — independent chains the compiler vectorizes, where one running sum was a
// serial add-latency chain (4 cycles an element: 0.4 ms of LeNet conv1's 1-thread backward).
#pragma once
#include <algorithm>
#include <cstdint>

#include "cnnfast/runtime.h"
#include "cpu/parallel.h"

namespace cnnfast::cpu {

// dy is (N, C, L); db is (C,).
template <class T>
void accumulate_channel_sums(int64_t N, int64_t C, int64_t L, T* db, const T* dy) {
  parallel_region(static_cast<int>(std::min<int64_t>(get_num_threads(), C)), [&](int t, int nt) {
    int64_t c0, c1;
    static_range(C, t, nt, c0, c1);
    constexpr int kSums = 16;
    for (int64_t c = c0; c < c1; ++c) {
      T s[kSums] = {};
      for (int64_t n = 0; n < N; ++n) {
        const T* row = dy + (n * C + c) * L;
        int64_t i = 0;
        for (; i + kSums <= L; i += kSums)
          for (int k = 0; k < kSums; ++k) s[k] += row[i + k];
        for (int k = 0; i < L; ++i, ++k) s[k] += row[i];
      }
      for (int w = kSums / 2; w > 0; w /= 2)  // pairwise: a fixed tree
        for (int k = 0; k < w; ++k) s[k] += s[k + w];
      db[c] += s[0];
    }
  });
}

}  // namespace cnnfast::cpu
