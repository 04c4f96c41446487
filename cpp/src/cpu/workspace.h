// workspace.h — per-thread scratch buffers reused across calls (no allocation per tile or per
// call once warm; no sharing between threads, so concurrent callers never collide).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace cnnfast {

enum class Scratch {
  pack_a = 0, pack_b = 1, col = 2, aux = 3, weights = 4, weights2 = 5, packed_weights = 6,
  count = 7
};

// Bytes held by every thread's scratch buffers together (each slot keeps its high-water mark,
// but see ScratchBuffer::get for huge ones), for the memory tests.
inline std::atomic<int64_t>& scratch_bytes_held() {
  static std::atomic<int64_t> held{0};
  return held;
}

class ScratchBuffer {
 public:
  ~ScratchBuffer() {
    std::free(ptr_);
    scratch_bytes_held() -= static_cast<int64_t>(cap_);
  }
  // Returns at least `bytes` bytes, 64-byte aligned; contents are unspecified. A buffer past
  // kKeepBytes is given back after kSmallRun requests in a row of under an eighth of it: one
  // huge call (a strided conv on one 16384² image held 1 GiB) is not kept for the thread's
  // lifetime, while a steady pattern (big blocks and a small last one, op after op) never
  // reallocates.
  void* get(size_t bytes) {
    if (cap_ > kKeepBytes && bytes < cap_ / 8) {
      if (++small_run_ >= kSmallRun) release();
    } else {
      small_run_ = 0;
    }
    if (bytes > cap_) {
      std::free(ptr_);
      ptr_ = nullptr;
      scratch_bytes_held() -= static_cast<int64_t>(cap_);
      cap_ = 0;
      size_t rounded = (bytes + 63) / 64 * 64;
      ptr_ = std::aligned_alloc(64, rounded);
      if (!ptr_) throw std::bad_alloc();
      cap_ = rounded;
      scratch_bytes_held() += static_cast<int64_t>(cap_);
    }
    return ptr_;
  }

 private:
  static constexpr size_t kKeepBytes = size_t(64) << 20;
  static constexpr int kSmallRun = 16;
  void release() {
    small_run_ = 0;
    std::free(ptr_);
    ptr_ = nullptr;
    scratch_bytes_held() -= static_cast<int64_t>(cap_);
    cap_ = 0;
  }
  void* ptr_ = nullptr;
  size_t cap_ = 0;
  int small_run_ = 0;
};

// The calling thread's buffer for `slot`.
template <class T>
T* thread_scratch(Scratch slot, int64_t count) {
  thread_local ScratchBuffer buffers[static_cast<int>(Scratch::count)];
  return static_cast<T*>(buffers[static_cast<int>(slot)].get(static_cast<size_t>(count) * sizeof(T)));
}

}  // namespace cnnfast
