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
// The 2x2 stride-2 fast path (pool_2x2.cpp) the *_planes entry points take when it applies.
// max_pool2x2_backward returns false when an index lies outside its output's window (dx is then
// unspecified and the general scatter must run). Max-unpooling runs on them when its indices
// fit 2x2 windows (p: the pooling that unpooling inverts): its forward is max_pool2x2_backward,
// its backward the gather max_unpool2x2_backward (false, dx unspecified: an index outside).
bool pool2x2_applies(const PoolParams& p);
template <class T>
void max_pool2x2_forward(const PoolParams& p, T* y, int64_t* idx, const T* x);
template <class T>
void avg_pool2x2_forward(const PoolParams& p, T scale, T* y, const T* x);
template <class T>
void avg_pool2x2_backward(const PoolParams& p, T scale, T* dx, const T* dy);
template <class T>
bool max_pool2x2_backward(const PoolParams& p, T* dx, const T* dy, const int64_t* idx);
template <class T>
bool max_unpool2x2_backward(const PoolParams& p, T* dx, const T* dy, const int64_t* idx);
template <class T>
void interpolate_backward_planes(const InterpParams& p, T* dx, const T* dy);

}  // namespace cnnfast::cpu
