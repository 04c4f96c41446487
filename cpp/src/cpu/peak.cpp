// peak.cpp — measures the FP32 peak with the active ISA's FMA probe on nthreads threads at once
// (so turbo and SMT effects match a multi-threaded benchmark). Best of several short rounds.
#include <algorithm>
#include <chrono>
#include <vector>

#include "cnnfast/peak.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"

namespace cnnfast {

double measure_peak_gflops(int nthreads, double seconds) {
  const PeakProbe& probe = peak_probe();
  nthreads = std::max(nthreads, 1);
  using clock = std::chrono::steady_clock;
  const int64_t iters = 1 << 20;
  double best = 0;
  const auto deadline = clock::now() + std::chrono::duration<double>(std::max(seconds, 0.01));
  do {
    std::vector<double> flops(nthreads, 0.0), secs(nthreads, 0.0);
    parallel_region(nthreads, [&](int t, int) {
      const auto t0 = clock::now();
      flops[t] = probe.run(iters, 1.0f + 1e-3f * t);
      secs[t] = std::chrono::duration<double>(clock::now() - t0).count();
    });
    double total = 0, longest = 0;
    for (int t = 0; t < nthreads; ++t) {
      total += flops[t];
      longest = std::max(longest, secs[t]);
    }
    if (longest > 0) best = std::max(best, total / longest * 1e-9);
  } while (clock::now() < deadline);
  return best;
}

}  // namespace cnnfast
