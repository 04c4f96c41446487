// thread_budget.cpp — read-outs of the process-wide thread budget kept in cpu/parallel.h and of
// the scratch buffers of cpu/workspace.h.
#include "cpu/parallel.h"
#include "cpu/workspace.h"

namespace cnnfast {

ThreadStats thread_stats() {
  return {thread_budget::workers_peak.load(), thread_budget::regions.load(),
          thread_budget::shrunk.load()};
}

void reset_thread_stats() { thread_budget::reset_stats(); }

int64_t scratch_bytes() { return scratch_bytes_held().load(); }

}  // namespace cnnfast
