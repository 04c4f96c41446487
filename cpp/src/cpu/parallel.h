// parallel.h — the OpenMP helpers every loop uses: a static split of work items over threads,
// with exceptions carried out of the parallel region (an exception must never cross OpenMP), and
// a process-wide thread budget so that concurrent calls (Python threads, the GIL released) do not
// oversubscribe the machine: every top-level region takes min(asked, free) threads of the
// configured count (at least 1, its own calling thread). Alone, a call gets all it asks for; all
// calls together never run more than get_num_threads() − 1 OpenMP workers besides their callers.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <type_traits>

#include "cnnfast/runtime.h"

#ifdef CNNFAST_OPENMP
#include <omp.h>
#endif

namespace cnnfast {

namespace thread_budget {
inline std::atomic<int> in_use{0};  // threads held by the running top-level regions (callers too)
// Observed by thread 0 of each region (omp_get_num_threads): OpenMP workers running now and their
// peak since reset_stats(); regions run, and those granted fewer threads than they asked for.
inline std::atomic<int> workers{0}, workers_peak{0};
inline std::atomic<int64_t> regions{0}, shrunk{0};

// GNU OpenMP's worker pool does not survive fork(): a child that starts a team waits forever for
// the parent's workers. The first team registers a fork handler (thread_budget.cpp) that makes the
// child single-threaded (get_num_threads() == 1, so no team starts) and clears the counts of the
// parent's regions, which are not running in the child. A child forked before any team is free.
void team_starting();

// Holds min(want, limit − in use) threads, at least 1, for its lifetime.
struct Grant {
  int n;
  explicit Grant(int want) {
    const int limit = get_num_threads();
    int cur = in_use.load(std::memory_order_relaxed);
    do {
      n = std::max(1, std::min(want, limit - cur));
    } while (!in_use.compare_exchange_weak(cur, cur + n, std::memory_order_acq_rel));
    regions.fetch_add(1, std::memory_order_relaxed);
    if (n < want) shrunk.fetch_add(1, std::memory_order_relaxed);
  }
  ~Grant() { in_use.fetch_sub(n, std::memory_order_acq_rel); }
  Grant(const Grant&) = delete;
  Grant& operator=(const Grant&) = delete;
};

inline void note_team(int team) {  // a region of `team` threads started
  const int now = workers.fetch_add(team - 1, std::memory_order_acq_rel) + team - 1;
  int peak = workers_peak.load(std::memory_order_relaxed);
  while (now > peak && !workers_peak.compare_exchange_weak(peak, now)) {
  }
}

inline void reset_stats() {
  workers_peak.store(workers.load());
  regions.store(0);
  shrunk.store(0);
}
}  // namespace thread_budget

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
    const thread_budget::Grant grant(nt);
    if (grant.n > 1) {
      thread_budget::team_starting();
      std::exception_ptr err;
      std::mutex mu;
      int team = 1;
#pragma omp parallel num_threads(grant.n)
      {
        if (omp_get_thread_num() == 0) {
          team = omp_get_num_threads();
          thread_budget::note_team(team);
        }
        try {
          f(omp_get_thread_num(), omp_get_num_threads());
        } catch (...) {
          std::lock_guard<std::mutex> lock(mu);
          if (!err) err = std::current_exception();
        }
      }
      thread_budget::workers.fetch_sub(team - 1, std::memory_order_acq_rel);
      if (err) std::rethrow_exception(err);
      return;
    }
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

// Orders this thread's non-temporal (streaming) stores before the ones that follow (x86 sfence;
// nothing elsewhere, where no kernel streams): a loop whose kernels may stream calls it before
// its threads join, so the rows are complete when the results are read.
inline void stream_fence() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_sfence();
#endif
}

// Calls f(a, b, c) for every (a, b, c) of the raster a < na, b < nb, c < nc in contiguous
// chunks (counters, no divisions per call) that the threads claim in turn from a shared counter,
// so a thread slowed by another process on a shared host does not hold the others at the join;
// a thread gets at least min_per_thread calls, so small rasters stay on fewer threads. For row
// loops whose rows are cheap. An f that takes a fourth (bool) argument learns whether the call
// starts a chunk (the calls before it in raster order may be running on another thread). Each
// thread ends with stream_fence(), so f's kernels may stream their rows.
template <class F>
void for_each_raster(int64_t na, int64_t nb, int64_t nc, int64_t min_per_thread, F&& f) {
  const int64_t total = na * nb * nc;
  if (total <= 0) return;
  const int nt = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(get_num_threads(), total / std::max<int64_t>(1, min_per_thread))));
  constexpr int64_t kChunksPerThread = 32;
  const int64_t chunks =
      nt == 1 ? 1
              : std::max<int64_t>(nt, std::min(int64_t(nt) * kChunksPerThread,
                                               total / std::max<int64_t>(1, min_per_thread)));
  std::atomic<int64_t> next{0};
  parallel_region(nt, [&](int, int) {
    for (int64_t ch; (ch = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
      int64_t r0, r1;
      static_range(total, static_cast<int>(ch), static_cast<int>(chunks), r0, r1);
      int64_t c = r0 % nc, b = r0 / nc % nb, a = r0 / (nc * nb);
      for (int64_t r = r0; r < r1; ++r) {
        if constexpr (std::is_invocable_v<F&, int64_t, int64_t, int64_t, bool>)
          f(a, b, c, r == r0);
        else
          f(a, b, c);
        if (++c == nc) {
          c = 0;
          if (++b == nb) b = 0, ++a;
        }
      }
    }
    stream_fence();
  });
}

}  // namespace cnnfast
