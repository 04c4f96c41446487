// runtime.h — library-wide run-time state: which ISA's kernels run, how many threads, build facts.
// The ISA is detected once (best of avx512 > avx2 > scalar the CPU and OS support); CNNFAST_ISA
// in the environment or set_isa() forces a path (tests use this to cover every one).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace cnnfast {

enum class Isa { scalar = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);
Isa isa_from_name(const std::string& name);  // throws invalid_argument for unknown names
bool isa_supported(Isa isa);                 // compiled in AND the CPU/OS can run it
std::vector<Isa> isa_available();            // supported ISAs, best last
Isa isa_detected();                          // best supported
bool isa_emulated(Isa isa);                  // avx512 in a CNNFAST_AVX512_EMULATION test build
Isa isa_active();                            // what kernels use now
void set_isa(Isa isa);                       // throws invalid_argument if not supported

int get_num_threads();
void set_num_threads(int n);                 // n >= 1; throws otherwise
// True in a process forked after this one's parent had run an OpenMP team: GNU OpenMP's pool
// does not survive fork(), so get_num_threads() is 1 there whatever set_num_threads() asked.
bool threads_limited_by_fork();

// The process-wide thread budget (cpu/parallel.h): concurrent calls share get_num_threads()
// threads. Observations since reset_thread_stats(): the peak number of OpenMP workers running at
// once besides the calling threads (stays <= get_num_threads() - 1), top-level parallel regions
// run, and regions granted fewer threads than they asked for because others held them.
struct ThreadStats {
  int peak_workers;
  int64_t regions, shrunk;
};
ThreadStats thread_stats();
void reset_thread_stats();
// Bytes that all threads' reusable scratch buffers hold now (each slot keeps its largest size).
int64_t scratch_bytes();
bool openmp_enabled();
// Names of the float32 microkernels the active ISA runs (gemm, conv tiles, eltwise, ...).
std::vector<std::string> active_kernel_names();
const char* version();

}  // namespace cnnfast
