// peak_fma.h — the FP32 peak probe contract: run `iters` rounds of independent register FMAs
// (no memory traffic) and return the floating-point operations done (an FMA counts 2).
#pragma once
#include <cstdint>

namespace cnnfast {

struct PeakProbe {
  const char* name;
  double (*run)(int64_t iters, float seed);
};

extern const PeakProbe peak_fma__scalar;
extern const PeakProbe peak_fma__avx2;
extern const PeakProbe peak_fma__avx512;

}  // namespace cnnfast
