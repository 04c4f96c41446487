// peak.h — the machine's measured FP32 peak: every thread runs the active ISA's register-only FMA
// loop for about `seconds`; returns total GFLOP/s over `nthreads` threads. Benchmarks divide by it.
#pragma once

namespace cnnfast {

double measure_peak_gflops(int nthreads, double seconds = 0.2);

}  // namespace cnnfast
