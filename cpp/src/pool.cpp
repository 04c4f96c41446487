// pool.cpp — the public pooling / unpooling / interpolation entry points: pick the naive twin
// (algo='ref') or the fast loops, run it. One place per op.
#include "cnnfast/pool.h"
#include "cpu/pool_planes.h"
#include "ref/pool_ref.h"

namespace cnnfast {

template <class T>
void max_pool_forward(const PoolParams& p, T* y, int64_t* idx, const T* x, PoolAlgo algo) {
  if (p.planes() == 0) return;  // no element: not even the per-dim tables
  if (algo == PoolAlgo::ref) return ref::max_pool_forward(p, y, idx, x);
  cpu::max_pool_forward_planes(p, y, idx, x);
}

template <class T>
void max_pool_backward(const PoolParams& p, T* dx, const T* dy, const int64_t* idx,
                       PoolAlgo algo) {
  if (p.planes() == 0) return;  // no element: not even the per-dim tables
  if (algo == PoolAlgo::ref) return ref::max_pool_backward(p, dx, dy, idx);
  cpu::max_pool_backward_planes(p, dx, dy, idx);
}

template <class T>
void avg_pool_forward(const PoolParams& p, const AvgOptions& o, T* y, const T* x, PoolAlgo algo) {
  if (p.planes() == 0) return;  // no element: not even the per-dim tables
  if (algo == PoolAlgo::ref) return ref::avg_pool_forward(p, o, y, x);
  cpu::avg_pool_forward_planes(p, o, y, x);
}

template <class T>
void avg_pool_backward(const PoolParams& p, const AvgOptions& o, T* dx, const T* dy,
                       PoolAlgo algo) {
  if (p.planes() == 0) return;  // no element: not even the per-dim tables
  if (algo == PoolAlgo::ref) return ref::avg_pool_backward(p, o, dx, dy);
  cpu::avg_pool_backward_planes(p, o, dx, dy);
}

template <class T>
void max_unpool_forward(const UnpoolParams& p, T* y, const T* x, const int64_t* idx,
                        PoolAlgo algo) {
  if (algo == PoolAlgo::ref) return ref::max_unpool_forward(p, y, x, idx);
  cpu::max_unpool_forward_planes(p, y, x, idx);
}

template <class T>
void max_unpool_backward(const UnpoolParams& p, T* dx, const T* dy, const int64_t* idx,
                         PoolAlgo algo) {
  if (algo == PoolAlgo::ref) return ref::max_unpool_backward(p, dx, dy, idx);
  cpu::max_unpool_backward_planes(p, dx, dy, idx);
}

template <class T>
void interpolate_forward(const InterpParams& p, T* y, const T* x, PoolAlgo algo) {
  if (p.planes() == 0) return;  // no element: not even the per-dim tables
  if (algo == PoolAlgo::ref) return ref::interpolate_forward(p, y, x);
  cpu::interpolate_forward_planes(p, y, x);
}

template <class T>
void interpolate_backward(const InterpParams& p, T* dx, const T* dy, PoolAlgo algo) {
  if (p.planes() == 0) return;  // no element: not even the per-dim tables
  if (algo == PoolAlgo::ref) return ref::interpolate_backward(p, dx, dy);
  cpu::interpolate_backward_planes(p, dx, dy);
}

#define CNNFAST_INSTANTIATE(T)                                                                  \
  template void max_pool_forward<T>(const PoolParams&, T*, int64_t*, const T*, PoolAlgo);       \
  template void max_pool_backward<T>(const PoolParams&, T*, const T*, const int64_t*, PoolAlgo); \
  template void avg_pool_forward<T>(const PoolParams&, const AvgOptions&, T*, const T*,         \
                                    PoolAlgo);                                                  \
  template void avg_pool_backward<T>(const PoolParams&, const AvgOptions&, T*, const T*,        \
                                     PoolAlgo);                                                 \
  template void max_unpool_forward<T>(const UnpoolParams&, T*, const T*, const int64_t*,        \
                                      PoolAlgo);                                                \
  template void max_unpool_backward<T>(const UnpoolParams&, T*, const T*, const int64_t*,       \
                                       PoolAlgo);                                               \
  template void interpolate_forward<T>(const InterpParams&, T*, const T*, PoolAlgo);            \
  template void interpolate_backward<T>(const InterpParams&, T*, const T*, PoolAlgo);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast
