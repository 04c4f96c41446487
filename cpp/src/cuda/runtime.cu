// runtime.cu — the CUDA backend's runtime: device query (lazy, cached, never throws), memory
// (stream-ordered pool when the device supports it), copies, stream handshakes for DLPack and
// the CUDA array interface, deferred switch-window checks, and the error formatting behind
// CNNFAST_CUDA_CHECK.
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>

#include "cuda/runtime.cuh"

namespace cnnfast::cuda {
namespace {

std::string describe(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")";
}

// Lowest compute capability the build has code for (SASS or PTX), e.g. 80 for "80;90".
int min_built_arch() {
#ifdef __CUDA_ARCH_LIST__
  constexpr int archs[] = {__CUDA_ARCH_LIST__};
  int lo = archs[0];
  for (int a : archs) lo = std::min(lo, a);
  return lo / 10;
#else
  return 80;
#endif
}

DeviceInfo query_device() {
  DeviceInfo d;
  cudaRuntimeGetVersion(&d.runtime_version);
  if (cudaDriverGetVersion(&d.driver_version) != cudaSuccess) d.driver_version = 0;
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    d.reason = "cudaGetDeviceCount failed: " + describe(e);
    if (d.driver_version == 0)
      d.reason += "; no NVIDIA driver is loaded (libcuda.so not found)";
    else if (d.driver_version < d.runtime_version)
      d.reason += "; the driver supports CUDA " + std::to_string(d.driver_version / 1000) + "." +
                  std::to_string(d.driver_version % 1000 / 10) + ", this build needs " +
                  std::to_string(d.runtime_version / 1000) + "." +
                  std::to_string(d.runtime_version % 1000 / 10);
    cudaGetLastError();
    return d;
  }
  if (n < 1) {
    d.reason = "no CUDA device visible (cudaGetDeviceCount returned 0; check CUDA_VISIBLE_DEVICES)";
    return d;
  }
  d.count = n;
  cudaDeviceProp prop{};
  cudaError_t e2 = cudaGetDevice(&d.device);
  if (e2 == cudaSuccess) e2 = cudaGetDeviceProperties(&prop, d.device);
  if (e2 != cudaSuccess) {
    d.reason = "cudaGetDeviceProperties failed: " + describe(e2);
    cudaGetLastError();
    return d;
  }
  d.name = prop.name;
  d.cc_major = prop.major;
  d.cc_minor = prop.minor;
  d.total_memory = static_cast<int64_t>(prop.totalGlobalMem);
  const int cc = prop.major * 10 + prop.minor;
  if (cc < min_built_arch()) {
    d.reason = std::string(prop.name) + " has compute capability " + std::to_string(prop.major) +
               "." + std::to_string(prop.minor) + "; this build has code for >= " +
               std::to_string(min_built_arch() / 10) + "." + std::to_string(min_built_arch() % 10);
    return d;
  }
  d.found = true;
  return d;
}

const DeviceInfo& cached_info() {
  static const DeviceInfo info = query_device();  // thread-safe one-time initialization
  return info;
}

void require_device() {
  const DeviceInfo& d = cached_info();
  if (!d.found) throw Error("no CUDA device: " + d.reason);
}

bool pools_supported() {
  static const bool yes = [] {
    int v = 0;
    const DeviceInfo& d = cached_info();
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMemoryPoolsSupported, d.device) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    if (v == 0) return false;
    // Keep freed blocks in the pool: with the default threshold (0) every synchronization hands
    // them back to the OS and the next cudaMallocAsync maps fresh pages (tens of µs per 100 MB
    // output, on every op of a synchronized loop); PyTorch's caching allocator keeps them too.
    cudaMemPool_t pool{};
    CNNFAST_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, d.device));
    uint64_t keep = UINT64_MAX;
    CNNFAST_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    return true;
  }();
  return yes;
}

struct Event {  // RAII for the stream handshakes
  cudaEvent_t ev{};
  Event() { CNNFAST_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming)); }
  ~Event() { cudaEventDestroy(ev); }
};

cudaStream_t stream_of(intptr_t s) {
  return s == 2 ? cudaStreamPerThread : reinterpret_cast<cudaStream_t>(s);
}

// ---- deferred window checks (runtime.cuh): one flag pair in device memory, as ErrorFlag's, on
// the device current at first use (nothing in cnnfast switches devices; on another one callers
// get no flag and wait instead), and a mapped pinned mirror, both kept until exit. A synchronizing
// call first queues snapshot_deferred — stream-ordered, it moves a raised report to the mirror
// and clears the flag, so no report of a later launch is lost — and reads the mirror after its
// own wait.
struct Deferred {
  int device = -1;
  long long* flag = nullptr;              // device memory
  volatile long long* mirror = nullptr;   // pinned host memory, mapped: written by the device
  long long* mirror_on_device = nullptr;  // its device address
};
std::mutex deferred_mutex;  // guards set-up and the mirror's read-and-clear
Deferred deferred;
std::atomic<bool> deferred_pending{false};

__global__ void snapshot_deferred(long long* flag, long long* mirror) {
  if (flag[0] != 0) {
    mirror[1] = flag[1];
    __threadfence_system();  // the index is visible to the host before the mark that says so
    mirror[0] = 1;
    flag[0] = flag[1] = 0;
  }
}

bool queue_deferred_readback() {
  if (!deferred_pending.exchange(false)) return false;
  int dev = -1;
  if (cudaGetDevice(&dev) != cudaSuccess || dev != deferred.device) {  // its stream is elsewhere
    cudaGetLastError();
    deferred_pending.store(true);
    return false;
  }
  try {
    snapshot_deferred<<<1, 1>>>(deferred.flag, deferred.mirror_on_device);
    CNNFAST_CUDA_CHECK_LAUNCH("snapshot_deferred");
  } catch (...) {
    deferred_pending.store(true);
    throw;
  }
  return true;
}

// After a wait that covers every snapshot queued so far: throws std::invalid_argument for a
// raised mirror (clearing it). A report whose wait failed stays in the mirror until the next.
void throw_if_deferred_raised() {
  std::lock_guard<std::mutex> lock(deferred_mutex);
  if (!deferred.mirror || deferred.mirror[0] == 0) return;
  const long long v = deferred.mirror[1];
  deferred.mirror[0] = deferred.mirror[1] = 0;
  throw std::invalid_argument(
      "indices: switches that max_pool made were changed afterwards: index " + std::to_string(v) +
      " is outside its pooling window. A max-pooling backward or max-unpooling call since the "
      "last synchronization used them unchecked (as max_pool's own) and its result is wrong; "
      "wrap changed indices in a new Switches to have them checked before use");
}

// Runs wait(), covering a deferred readback queued first; a failed wait leaves it pending.
template <class Wait>
void wait_and_check_deferred(Wait&& wait) {
  const bool queued = queue_deferred_readback();
  try {
    wait();
  } catch (...) {
    if (queued) deferred_pending.store(true);
    throw;
  }
  throw_if_deferred_raised();
}

}  // namespace

void throw_error(cudaError_t e, const char* call, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  std::string msg = std::string(call) + " failed: " + describe(e) + " [" +
                    (base ? base + 1 : file) + ":" + std::to_string(line) + "]";
  if (e == cudaErrorIllegalAddress || e == cudaErrorLaunchFailure || e == cudaErrorAssert)
    msg += " (asynchronous: may come from an earlier kernel; the CUDA context is now unusable)";
  cudaGetLastError();  // clear non-sticky errors so the next call starts clean
  throw Error(msg);
}

DeviceInfo device_info() { return cached_info(); }

void* device_alloc(int64_t bytes) {
  if (bytes < 0) throw std::invalid_argument("device_alloc: negative size");
  require_device();
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  if (pools_supported())
    CNNFAST_CUDA_CHECK(cudaMallocAsync(&p, static_cast<size_t>(bytes), 0));
  else
    CNNFAST_CUDA_CHECK(cudaMalloc(&p, static_cast<size_t>(bytes)));
  return p;
}

void device_free(void* p) noexcept {
  if (!p) return;
  const cudaError_t e = pools_supported() ? cudaFreeAsync(p, 0) : cudaFree(p);
  if (e != cudaSuccess) cudaGetLastError();  // e.g. cudaErrorCudartUnloading at exit
}

void copy_to_device(void* dst, const void* src, int64_t bytes) {
  if (bytes > 0) CNNFAST_CUDA_CHECK(cudaMemcpy(dst, src, size_t(bytes), cudaMemcpyHostToDevice));
}

void copy_to_host(void* dst, const void* src, int64_t bytes) {
  wait_and_check_deferred([&] {
    if (bytes > 0) read_back(dst, src, bytes);
    else CNNFAST_CUDA_CHECK(cudaStreamSynchronize(0));
  });
}

void read_back(void* dst, const void* src, int64_t bytes) {
  if (bytes > 0) CNNFAST_CUDA_CHECK(cudaMemcpy(dst, src, size_t(bytes), cudaMemcpyDeviceToHost));
}

void copy_on_device(void* dst, const void* src, int64_t bytes) {
  if (bytes > 0)
    CNNFAST_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(bytes), cudaMemcpyDeviceToDevice, 0));
}

void fill_bytes(void* dst, int byte, int64_t bytes) {
  if (bytes > 0) CNNFAST_CUDA_CHECK(cudaMemsetAsync(dst, byte, size_t(bytes), 0));
}

void synchronize() {
  require_device();
  wait_and_check_deferred([] { CNNFAST_CUDA_CHECK(cudaDeviceSynchronize()); });
}

long long* deferred_window_flag() {
  require_device();
  int dev = 0;
  CNNFAST_CUDA_CHECK(cudaGetDevice(&dev));
  std::lock_guard<std::mutex> lock(deferred_mutex);
  if (deferred.device < 0) {
    void *flag = nullptr, *mirror = nullptr, *mirror_on_device = nullptr;
    CNNFAST_CUDA_CHECK(cudaMalloc(&flag, 2 * sizeof(long long)));
    try {
      CNNFAST_CUDA_CHECK(cudaMemset(flag, 0, 2 * sizeof(long long)));
      CNNFAST_CUDA_CHECK(cudaHostAlloc(&mirror, 2 * sizeof(long long), cudaHostAllocMapped));
    } catch (...) {
      cudaFree(flag);
      throw;
    }
    std::memset(mirror, 0, 2 * sizeof(long long));
    const cudaError_t e = cudaHostGetDevicePointer(&mirror_on_device, mirror, 0);
    if (e != cudaSuccess) {
      cudaFree(flag);
      cudaFreeHost(mirror);
      check(e, "cudaHostGetDevicePointer(&mirror_on_device, mirror, 0)", __FILE__, __LINE__);
    }
    deferred.flag = static_cast<long long*>(flag);
    deferred.mirror = static_cast<long long*>(mirror);
    deferred.mirror_on_device = static_cast<long long*>(mirror_on_device);
    deferred.device = dev;
  }
  return dev == deferred.device ? deferred.flag : nullptr;
}

void mark_deferred_pending() { deferred_pending.store(true); }

void wait_for_stream(intptr_t stream) {
  if (stream == 1) return;  // the legacy default stream is ours
  require_device();
  Event e;
  CNNFAST_CUDA_CHECK(cudaEventRecord(e.ev, stream_of(stream)));
  CNNFAST_CUDA_CHECK(cudaStreamWaitEvent(0, e.ev, 0));
}

void publish_to_stream(intptr_t stream) {
  if (stream == 1) return;
  require_device();
  Event e;
  CNNFAST_CUDA_CHECK(cudaEventRecord(e.ev, 0));
  CNNFAST_CUDA_CHECK(cudaStreamWaitEvent(stream_of(stream), e.ev, 0));
}

}  // namespace cnnfast::cuda
