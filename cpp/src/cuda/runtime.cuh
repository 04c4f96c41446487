// runtime.cuh — what every CUDA file shares: the checking macros (each failure becomes a
// cnnfast::cuda::Error naming the call), grid-stride launch sizes, RAII scratch memory, a device
// flag through which kernels report bad arguments (indices, targets), the window check of
// pooling switches (waited for, or deferred for max_pool's own), and a block-wide sum.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "cnnfast/cuda.h"

namespace cnnfast::cuda {

[[noreturn]] void throw_error(cudaError_t e, const char* call, const char* file, int line);
inline void check(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess) throw_error(e, call, file, line);
}

}  // namespace cnnfast::cuda

#define CNNFAST_CUDA_CHECK(call) ::cnnfast::cuda::check((call), #call, __FILE__, __LINE__)
// After a <<<...>>> launch: configuration errors (and earlier asynchronous faults) now, named.
#define CNNFAST_CUDA_CHECK_LAUNCH(kernel) \
  ::cnnfast::cuda::check(cudaGetLastError(), "launch of " kernel, __FILE__, __LINE__)
// for (int64_t i = first; i < n; i += whole grid) — every kernel is written this way, so any n
// works with a capped grid.
#define CNNFAST_GRID_STRIDE(i, n)                                                     \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < int64_t(n); \
       i += int64_t(gridDim.x) * blockDim.x)

namespace cnnfast::cuda {

constexpr int kThreads = 256;  // threads per block of the elementwise / grid-stride kernels

int multiprocessors();  // of the current device (100 when it can't be read)

inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(b, int64_t(1) << 20)));
}

// Device memory for one call's temporaries, freed (stream-ordered) when the scope ends.
template <class T>
class Scratch {
 public:
  explicit Scratch(int64_t count)
      : p_(static_cast<T*>(device_alloc(count * int64_t(sizeof(T))))) {}
  ~Scratch() { device_free(p_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return p_; }

 private:
  T* p_;
};

// copy_to_host without the deferred check: the internal waits (ErrorFlag) leave it to the
// user-visible ones.
void read_back(void* dst, const void* src, int64_t bytes);

// Two device int64s through which kernels report a bad argument: [0] becomes 1 for the first
// reporter, which stores the offending value in [1]. Setting it up is asynchronous; raised()
// copies it back (a synchronization) so the host can throw a clear error.
class ErrorFlag {
 public:
  ErrorFlag() : buf_(2) { fill_bytes(buf_.get(), 0, 2 * sizeof(long long)); }
  long long* ptr() const { return buf_.get(); }
  bool raised(int64_t* value) const {
    long long v[2] = {0, 0};
    read_back(v, buf_.get(), sizeof v);
    *value = v[1];
    return v[0] != 0;
  }

 private:
  Scratch<long long> buf_;
};

// The flag (an ErrorFlag pair, allocated once) for window checks whose answer nobody waits for;
// nullptr on a device other than the one it was set up on (then wait instead).
// mark_deferred_pending(), after the launch that reports there, makes the next synchronize() or
// copy_to_host() — in any host thread — read it back within its own wait and throw
// std::invalid_argument when it was raised (clearing it).
long long* deferred_window_flag();
void mark_deferred_pending();

// Where a one-pass pooling path reports a switch outside its window. Switches of unknown origin:
// a fresh ErrorFlag; missed() waits for it, and on a miss the caller reruns its general path.
// Switches max_pool made (from_pool; in their windows by construction): the deferred flag, no
// wait, missed() is false.
class WindowCheck {
 public:
  explicit WindowCheck(bool from_pool) : ptr_(from_pool ? deferred_window_flag() : nullptr) {
    if (!ptr_) ptr_ = flag_.emplace().ptr();
  }
  ~WindowCheck() {
    if (!flag_) mark_deferred_pending();  // after the launch: a concurrent check can't miss it
  }
  WindowCheck(const WindowCheck&) = delete;
  WindowCheck& operator=(const WindowCheck&) = delete;
  long long* ptr() const { return ptr_; }
  bool missed() const {
    int64_t v = 0;
    return flag_ && flag_->raised(&v);
  }

 private:
  std::optional<ErrorFlag> flag_;
  long long* ptr_;
};

// Kernel bodies are __host__ __device__ (CNNFAST_HD) so the test hooks in emulate:: can run the
// very same index math on the host; these atomics become plain updates there (one thread).
#define CNNFAST_HD __host__ __device__
#ifdef __CUDA_ARCH__
#define CNNFAST_UNROLL _Pragma("unroll")
#else
#define CNNFAST_UNROLL
#endif

CNNFAST_HD inline void report_error(long long* flag, long long value) {
#ifdef __CUDA_ARCH__
  if (atomicCAS(reinterpret_cast<unsigned long long*>(flag), 0ull, 1ull) == 0ull) flag[1] = value;
#else
  if (flag[0] == 0) {
    flag[0] = 1;
    flag[1] = value;
  }
#endif
}

CNNFAST_HD inline void atomic_add(float* p, float v) {
#ifdef __CUDA_ARCH__
  atomicAdd(p, v);
#else
  *p += v;
#endif
}

CNNFAST_HD inline void atomic_max(unsigned long long* p, unsigned long long v) {
#ifdef __CUDA_ARCH__
  atomicMax(p, v);
#else
  if (*p < v) *p = v;
#endif
}

// Sum of v over the block (blockDim.x == NT, a multiple of 32); every thread must call it and
// every thread gets the total. `shared` holds NT / 32 doubles.
template <int NT>
__device__ double block_sum(double v, double* shared) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0;
    for (int w = 0; w < NT / 32; ++w) total += shared[w];
    shared[0] = total;
  }
  __syncthreads();
  const double total = shared[0];
  __syncthreads();  // shared may be reused right after
  return total;
}

}  // namespace cnnfast::cuda
