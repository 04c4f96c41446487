// pool_ref.h — naive twins of pooling, unpooling and interpolation: direct loops over the
// formulas, no SIMD, no threads. The correctness anchor for the fast loops (algo='ref').
#pragma once
#include "cnnfast/pool.h"

namespace cnnfast::ref {

template <class T>
void max_pool_forward(const PoolParams& p, T* y, int64_t* idx, const T* x);
template <class T>
void max_pool_backward(const PoolParams& p, T* dx, const T* dy, const int64_t* idx);
template <class T>
void avg_pool_forward(const PoolParams& p, const AvgOptions& o, T* y, const T* x);
template <class T>
void avg_pool_backward(const PoolParams& p, const AvgOptions& o, T* dx, const T* dy);
template <class T>
void max_unpool_forward(const UnpoolParams& p, T* y, const T* x, const int64_t* idx);
template <class T>
void max_unpool_backward(const UnpoolParams& p, T* dx, const T* dy, const int64_t* idx);
template <class T>
void interpolate_forward(const InterpParams& p, T* y, const T* x);
template <class T>
void interpolate_backward(const InterpParams& p, T* dx, const T* dy);

}  // namespace cnnfast::ref
