// thread_budget.cpp — read-out of the process-wide thread budget kept in cpu/parallel.h.
#include "cpu/parallel.h"

namespace cnnfast {

ThreadStats thread_stats() {
  return {thread_budget::workers_peak.load(), thread_budget::regions.load(),
          thread_budget::shrunk.load()};
}

void reset_thread_stats() { thread_budget::reset_stats(); }

}  // namespace cnnfast
