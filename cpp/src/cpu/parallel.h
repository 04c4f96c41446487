// parallel.h — the OpenMP helpers every loop uses: a static split of work items over threads,
// with exceptions carried out of the parallel region (an exception must never cross OpenMP).
#pragma once
#include <cstdint>
#include <exception>
#include <mutex>

#ifdef CNNFAST_OPENMP
#include <omp.h>
#endif

namespace cnnfast {

inline bool in_parallel_region() {
#ifdef CNNFAST_OPENMP
  return omp_in_parallel();
#else
  return false;
#endif
}

// Runs f(thread_index, nthreads) on nt threads (nt clamped to >= 1); rethrows the first exception.
template <class F>
void parallel_region(int nt, F&& f) {
#ifdef CNNFAST_OPENMP
  if (nt > 1 && !in_parallel_region()) {
    std::exception_ptr err;
    std::mutex mu;
#pragma omp parallel num_threads(nt)
    {
      try {
        f(omp_get_thread_num(), omp_get_num_threads());
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!err) err = std::current_exception();
      }
    }
    if (err) std::rethrow_exception(err);
    return;
  }
#endif
  f(0, 1);
}

// The static share [begin, end) of `items` for thread t of nt.
inline void static_range(int64_t items, int t, int nt, int64_t& begin, int64_t& end) {
  begin = items * t / nt;
  end = items * (t + 1) / nt;
}

// Calls f(item, inner_threads) for every item: items split across threads when there are at least
// as many items as threads (inner_threads = 1), otherwise items run in turn with all threads
// available to the work inside each one.
template <class F>
void for_each_item(int64_t items, int nt, F&& f) {
  if (nt > 1 && items >= nt && !in_parallel_region()) {
    parallel_region(nt, [&](int t, int n) {
      int64_t b, e;
      static_range(items, t, n, b, e);
      for (int64_t it = b; it < e; ++it) f(it, 1);
    });
    return;
  }
  for (int64_t it = 0; it < items; ++it) f(it, in_parallel_region() ? 1 : nt);
}

}  // namespace cnnfast
