// channel_sums.h — the bias gradient every convolution shares: db[c] += Σ_{n, i} dy[n, c, i].
// One thread sums each channel in a fixed order, so the result is the same at any thread count.
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
    for (int64_t c = c0; c < c1; ++c) {
      T s = T(0);
      for (int64_t n = 0; n < N; ++n) {
        const T* row = dy + (n * C + c) * L;
        for (int64_t i = 0; i < L; ++i) s += row[i];
      }
      db[c] += s;
    }
  });
}

}  // namespace cnnfast::cpu
