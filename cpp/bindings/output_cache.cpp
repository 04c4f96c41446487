// output_cache.cpp — recycles the memory of large output arrays. A fresh 100 MB NumPy array is a
// fresh mmap: ~25,000 first-touch page faults on every call, which cost more than a pooling pass
// or a backward's zero-fill. Outputs of >= 1 MiB are carved from blocks kept after their arrays
// die (exact size match after rounding to pages; at most kMaxCachedBytes held, so RSS is bounded).
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <utility>

#include "common.h"

namespace cnnfast::py_bind {
namespace {

constexpr size_t kMaxCachedBytes = size_t(512) << 20;

struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> blocks;  // size -> block
  size_t bytes = 0;
};

// Leaked on purpose: arrays may be freed during interpreter shutdown, after static destructors.
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

}  // namespace

namespace {
// std::bad_alloc with a message: pybind11 raises MemoryError with what().
struct OutOfMemory : std::bad_alloc {
  explicit OutOfMemory(std::string m) : msg(std::move(m)) {}
  const char* what() const noexcept override { return msg.c_str(); }
  std::string msg;
};
}  // namespace

void* output_block_take(size_t bytes) {
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.blocks.find(bytes);
    if (it != c.blocks.end()) {
      void* p = it->second;
      c.blocks.erase(it);
      c.bytes -= bytes;
      return p;
    }
  }
  void* p = std::aligned_alloc(64, bytes);  // bytes is a multiple of the page size
  if (!p)  // a MemoryError that says how much (a bare bad_alloc said nothing)
    throw OutOfMemory("out of memory: the result needs " + std::to_string(bytes >> 20) +
                      " MiB (" + std::to_string(bytes) + " bytes)");
  return p;
}

void output_block_give(void* p, size_t bytes) {
  Cache& c = cache();
  std::multimap<size_t, void*> evicted;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (bytes > kMaxCachedBytes) {
      evicted.emplace(bytes, p);
    } else {
      // Make room by dropping the largest other blocks first (the least likely to fit again).
      while (c.bytes + bytes > kMaxCachedBytes) {
        auto last = std::prev(c.blocks.end());
        c.bytes -= last->first;
        evicted.insert(*last);
        c.blocks.erase(last);
      }
      c.blocks.emplace(bytes, p);
      c.bytes += bytes;
    }
  }
  for (auto& kv : evicted) std::free(kv.second);
}

size_t output_cache_bytes() {
  std::lock_guard<std::mutex> lock(cache().mu);
  return cache().bytes;
}

}  // namespace cnnfast::py_bind
