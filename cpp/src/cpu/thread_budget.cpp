// thread_budget.cpp — read-outs of the process-wide thread budget kept in cpu/parallel.h and of
// the scratch buffers of cpu/workspace.h; the fork handler that keeps a forked child off the
// parent's OpenMP pool.
#include <atomic>

#include "cpu/parallel.h"
#include "cpu/workspace.h"

#if __has_include(<pthread.h>)
#include <pthread.h>
#define CNNFAST_HAVE_ATFORK 1
#endif

namespace cnnfast {
namespace {
std::atomic<bool> g_fork_limited{false};

#ifdef CNNFAST_HAVE_ATFORK
void on_fork_child() {  // runs in the child only, before fork() returns there
  g_fork_limited.store(true);
  thread_budget::in_use.store(0);
  thread_budget::workers.store(0);
}
#endif
}  // namespace

void thread_budget::team_starting() {
#ifdef CNNFAST_HAVE_ATFORK
  static const bool registered = pthread_atfork(nullptr, nullptr, &on_fork_child) == 0;
  (void)registered;
#endif
}

bool threads_limited_by_fork() { return g_fork_limited.load(std::memory_order_relaxed); }

ThreadStats thread_stats() {
  return {thread_budget::workers_peak.load(), thread_budget::regions.load(),
          thread_budget::shrunk.load()};
}

void reset_thread_stats() { thread_budget::reset_stats(); }

int64_t scratch_bytes() { return scratch_bytes_held().load(); }

}  // namespace cnnfast
