// unpool_planes.cpp — fast max-unpooling loops, OpenMP over (N, C) planes. Forward writes each
// plane in raster order so the last writer of a shared index wins; backward gathers in the same
// order and zeroes a writer's gradient as soon as a later one overwrites its index. Indices that
// all lie in the 2x2 stride-2 windows of their positions cannot be shared: those calls take the
// one-pass 2x2 loops of pool_2x2.cpp.
// Every index is range-checked before its write.
#include <algorithm>
#include <string>
#include <vector>

#include "cnnfast/checked.h"
#include "cnnfast/runtime.h"
#include "cpu/parallel.h"
#include "cpu/pool_planes.h"

namespace cnnfast::cpu {
namespace {
[[noreturn]] void bad_index(int64_t i, int64_t count) {
  arg_error("indices: value " + std::to_string(i) + " is out of range [0, " +
            std::to_string(count) + ") of the output plane");
}

// The 2x2 stride-2 pooling that maps the unpooled planes onto the pooled ones, when the
// extents are known and fit it (depth kept, every pooled row and column a window inside).
bool as_pool2x2(const UnpoolParams& u, PoolParams& q) {
  if (u.in_count < 1 || u.out[0] < 1) return false;
  q = PoolParams{u.planes, 1, {u.out[0], u.out[1], u.out[2]}, {u.in[0], u.in[1], u.in[2]},
                 {1, 2, 2}, {1, 2, 2}, {0, 0, 0}, {1, 1, 1}, false};
  return pool2x2_applies(q);
}
}  // namespace

template <class T>
void max_unpool_forward_planes(const UnpoolParams& p, T* y, const T* x, const int64_t* idx) {
  PoolParams q;  // indices in disjoint 2x2 windows: y written once, row pair by row pair
  if (as_pool2x2(p, q) && max_pool2x2_backward(q, y, x, idx)) return;
  for_each_item(p.planes, get_num_threads(), [&](int64_t pl, int) {
    T* yp = y + pl * p.out_count;  // (out_count,) one plane
    const T* xp = x + pl * p.in_count;
    const int64_t* ip = idx + pl * p.in_count;
    std::fill(yp, yp + p.out_count, T(0));
    for (int64_t j = 0; j < p.in_count; ++j) {
      const int64_t i = ip[j];
      if (static_cast<uint64_t>(i) >= static_cast<uint64_t>(p.out_count)) bad_index(i, p.out_count);
      yp[i] = xp[j];
    }
  });
}

template <class T>
void max_unpool_backward_planes(const UnpoolParams& p, T* dx, const T* dy, const int64_t* idx) {
  PoolParams q;  // indices in disjoint 2x2 windows: no index is shared, a plain gather
  if (as_pool2x2(p, q) && max_unpool2x2_backward(q, dx, dy, idx)) return;
  const int nt = static_cast<int>(std::min<int64_t>(get_num_threads(), p.planes));
  parallel_region(nt, [&](int t, int n) {
    int64_t pl0, pl1;
    static_range(p.planes, t, n, pl0, pl1);
    // writer[i] = stamp + j + 1 of the latest j that wrote output i in this plane; entries from
    // earlier planes or calls are <= stamp (the per-thread stamp only grows), so no clearing.
    thread_local std::vector<uint64_t> writer_buffer;
    thread_local uint64_t stamp = 0;
    if (pl0 < pl1 && writer_buffer.size() < static_cast<size_t>(p.out_count))
      writer_buffer.resize(static_cast<size_t>(p.out_count), 0);
    uint64_t* writer = writer_buffer.data();  // (out_count,)
    for (int64_t pl = pl0; pl < pl1; ++pl) {
      const uint64_t base = stamp;
      stamp += static_cast<uint64_t>(p.in_count) + 1;
      T* dxp = dx + pl * p.in_count;  // (in_count,) one plane
      const T* dyp = dy + pl * p.out_count;
      const int64_t* ip = idx + pl * p.in_count;
      for (int64_t j = 0; j < p.in_count; ++j) {
        const int64_t i = ip[j];
        if (static_cast<uint64_t>(i) >= static_cast<uint64_t>(p.out_count))
          bad_index(i, p.out_count);
        const uint64_t prev = writer[i];
        if (prev > base) dxp[prev - base - 1] = T(0);  // overwritten by j: its gradient is 0
        writer[i] = base + static_cast<uint64_t>(j) + 1;
        dxp[j] = dyp[i];
      }
    }
    // Kept for the next call up to 8 MiB a thread (planes up to 1024x1024); larger ones are
    // given back rather than held for the life of the thread.
    if (writer_buffer.size() > (size_t(1) << 20)) {
      writer_buffer = std::vector<uint64_t>();
      stamp = 0;
    }
  });
}

#define CNNFAST_INSTANTIATE(T)                                                                  \
  template void max_unpool_forward_planes<T>(const UnpoolParams&, T*, const T*, const int64_t*); \
  template void max_unpool_backward_planes<T>(const UnpoolParams&, T*, const T*, const int64_t*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
