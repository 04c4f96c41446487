// pool_planes.h — the fast pooling/unpooling loops: OpenMP over output rows (forward) or over
// (N, C) planes (backward, unpool: each plane's scatter runs in raster order on one thread, so
// results are deterministic and race-free), microkernels from cpu/pool_dispatch.h.
#pragma once
#include "cnnfast/pool.h"

namespace cnnfast::cpu {

template <class T>
void max_pool_forward_planes(const PoolParams& p, T* y, int64_t* idx, const T* x);
template <class T>
void max_pool_backward_planes(const PoolParams& p, T* dx, const T* dy, const int64_t* idx);
template <class T>
void avg_pool_forward_planes(const PoolParams& p, const AvgOptions& o, T* y, const T* x);
template <class T>
void avg_pool_backward_planes(const PoolParams& p, const AvgOptions& o, T* dx, const T* dy);
template <class T>
void max_unpool_forward_planes(const UnpoolParams& p, T* y, const T* x, const int64_t* idx);
template <class T>
void max_unpool_backward_planes(const UnpoolParams& p, T* dx, const T* dy, const int64_t* idx);
template <class T>
void interpolate_forward_planes(const InterpParams& p, T* y, const T* x);
template <class T>
void interpolate_backward_planes(const InterpParams& p, T* dx, const T* dy);

}  // namespace cnnfast::cpu
