// unpool_planes.cpp — fast max-unpooling loops, OpenMP over (N, C) planes. Forward writes each
// plane in raster order so the last writer of a shared index wins; backward walks the plane in
// reverse with a per-thread "claimed" byte map, giving each index's gradient to that last writer.
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
}  // namespace

template <class T>
void max_unpool_forward_planes(const UnpoolParams& p, T* y, const T* x, const int64_t* idx) {
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
  for_each_item(p.planes, get_num_threads(), [&](int64_t pl, int) {
    thread_local std::vector<unsigned char> claimed_buffer;
    claimed_buffer.assign(static_cast<size_t>(p.out_count), 0);
    unsigned char* claimed = claimed_buffer.data();  // (out_count,) 1 once a later j wrote there
    T* dxp = dx + pl * p.in_count;  // (in_count,) one plane
    const T* dyp = dy + pl * p.out_count;
    const int64_t* ip = idx + pl * p.in_count;
    for (int64_t j = p.in_count - 1; j >= 0; --j) {
      const int64_t i = ip[j];
      if (static_cast<uint64_t>(i) >= static_cast<uint64_t>(p.out_count)) bad_index(i, p.out_count);
      dxp[j] = claimed[i] ? T(0) : dyp[i];
      claimed[i] = 1;
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
