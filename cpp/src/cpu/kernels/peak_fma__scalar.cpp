// peak_fma__scalar.cpp — the peak probe for the scalar path: 12 independent multiply-add chains in
// plain C++ (what the baseline ISA can issue). Returns the FLOPs done.
#include "cpu/kernels/peak_fma.h"

namespace cnnfast {
namespace {

double peak_fma_scalar(int64_t iters, float seed) {
  float acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = seed * float(i + 1);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
  float s = 0;
  for (int i = 0; i < 12; ++i) s += acc[i];
  volatile float sink = s;
  (void)sink;
  return double(iters) * 12 * 2;
}

}  // namespace

const PeakProbe peak_fma__scalar = {"peak_fma__scalar", peak_fma_scalar};

}  // namespace cnnfast
