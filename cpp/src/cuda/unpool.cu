// unpool.cu — max-unpooling on CUDA, x and idx (planes, in_count), y (planes, out_count). Where
// several inputs share an index the LAST in raster order wins, as on the CPU: a first pass claims
// each output slot with atomicMax(j + 1) (and checks every index), a second pass lets only the
// claimant write (forward) or read back (backward, its exact adjoint; others get 0).
#include <algorithm>
#include <string>
#include <vector>

#include "cuda/runtime.cuh"

namespace cnnfast::cuda {
namespace {

// ---- one input element j each (the kernels run these in grid-stride loops) ----------------------
CNNFAST_HD inline void claim_one(int64_t j, int64_t in_count, int64_t out_count,
                                 const int64_t* idx, unsigned long long* winner, long long* flag) {
  const int64_t i = idx[j];
  if (i < 0 || i >= out_count) {
    report_error(flag, i);
    return;
  }
  atomic_max(&winner[(j / in_count) * out_count + i],
             static_cast<unsigned long long>(j % in_count) + 1ull);
}

CNNFAST_HD inline bool is_winner(int64_t j, int64_t in_count, int64_t slot,
                                 const unsigned long long* winner) {
  return winner[slot] == static_cast<unsigned long long>(j % in_count) + 1ull;
}

CNNFAST_HD inline void forward_one(int64_t j, int64_t in_count, int64_t out_count, float* y,
                                   const float* x, const int64_t* idx,
                                   const unsigned long long* winner) {
  const int64_t slot = (j / in_count) * out_count + idx[j];
  if (is_winner(j, in_count, slot, winner)) y[slot] = x[j];
}

CNNFAST_HD inline void backward_one(int64_t j, int64_t in_count, int64_t out_count, float* dx,
                                    const float* dy, const int64_t* idx,
                                    const unsigned long long* winner) {
  const int64_t slot = (j / in_count) * out_count + idx[j];
  dx[j] = is_winner(j, in_count, slot, winner) ? dy[slot] : 0.f;
}

__global__ void unpool_claim_kernel(int64_t total, int64_t in_count, int64_t out_count,
                                    const int64_t* idx, unsigned long long* winner,
                                    long long* flag) {
  CNNFAST_GRID_STRIDE(j, total) { claim_one(j, in_count, out_count, idx, winner, flag); }
}

__global__ void unpool_forward_kernel(int64_t total, int64_t in_count, int64_t out_count,
                                      float* y, const float* x, const int64_t* idx,
                                      const unsigned long long* winner) {
  CNNFAST_GRID_STRIDE(j, total) { forward_one(j, in_count, out_count, y, x, idx, winner); }
}

__global__ void unpool_backward_kernel(int64_t total, int64_t in_count, int64_t out_count,
                                       float* dx, const float* dy, const int64_t* idx,
                                       const unsigned long long* winner) {
  CNNFAST_GRID_STRIDE(j, total) { backward_one(j, in_count, out_count, dx, dy, idx, winner); }
}

void throw_bad_index(int64_t v, int64_t out_count) {
  throw std::invalid_argument("indices: value " + std::to_string(v) + " is out of range [0, " +
                              std::to_string(out_count) + ") of the output plane");
}

// Fills `winner` (planes × out_count) with 1 + the last j writing each slot (0: none); throws
// std::invalid_argument, before anything reads the winners, when an index is out of range.
void claim_slots(const UnpoolParams& p, const int64_t* idx, unsigned long long* winner) {
  fill_bytes(winner, 0, p.planes * p.out_count * int64_t(sizeof(unsigned long long)));
  const int64_t total = p.planes * p.in_count;
  ErrorFlag bad;
  unpool_claim_kernel<<<blocks_for(total), kThreads>>>(total, p.in_count, p.out_count, idx,
                                                       winner, bad.ptr());
  CNNFAST_CUDA_CHECK_LAUNCH("unpool_claim_kernel");
  int64_t v = 0;
  if (bad.raised(&v)) throw_bad_index(v, p.out_count);
}

// The host run of the same element programs (emulate:: test hooks).
std::vector<unsigned long long> claim_on_host(const UnpoolParams& p, const int64_t* idx) {
  std::vector<unsigned long long> winner(size_t(p.planes * p.out_count), 0ull);
  long long flag[2] = {0, 0};
  for (int64_t j = 0; j < p.planes * p.in_count; ++j)
    claim_one(j, p.in_count, p.out_count, idx, winner.data(), flag);
  if (flag[0]) throw_bad_index(flag[1], p.out_count);
  return winner;
}

}  // namespace

void max_unpool_forward(const UnpoolParams& p, float* y, const float* x, const int64_t* idx) {
  fill_bytes(y, 0, p.planes * p.out_count * int64_t(sizeof(float)));
  const int64_t total = p.planes * p.in_count;
  if (total == 0) return;
  Scratch<unsigned long long> winner(p.planes * p.out_count);
  claim_slots(p, idx, winner.get());
  unpool_forward_kernel<<<blocks_for(total), kThreads>>>(total, p.in_count, p.out_count, y, x,
                                                         idx, winner.get());
  CNNFAST_CUDA_CHECK_LAUNCH("unpool_forward_kernel");
}

void max_unpool_backward(const UnpoolParams& p, float* dx, const float* dy, const int64_t* idx) {
  const int64_t total = p.planes * p.in_count;
  if (total == 0) return;
  Scratch<unsigned long long> winner(p.planes * p.out_count);
  claim_slots(p, idx, winner.get());
  unpool_backward_kernel<<<blocks_for(total), kThreads>>>(total, p.in_count, p.out_count, dx, dy,
                                                          idx, winner.get());
  CNNFAST_CUDA_CHECK_LAUNCH("unpool_backward_kernel");
}

namespace emulate {
void max_unpool_forward(const UnpoolParams& p, float* y, const float* x, const int64_t* idx) {
  std::fill(y, y + p.planes * p.out_count, 0.f);
  const std::vector<unsigned long long> winner = claim_on_host(p, idx);
  for (int64_t j = 0; j < p.planes * p.in_count; ++j)
    forward_one(j, p.in_count, p.out_count, y, x, idx, winner.data());
}
void max_unpool_backward(const UnpoolParams& p, float* dx, const float* dy, const int64_t* idx) {
  const std::vector<unsigned long long> winner = claim_on_host(p, idx);
  for (int64_t j = 0; j < p.planes * p.in_count; ++j)
    backward_one(j, p.in_count, p.out_count, dx, dy, idx, winner.data());
}
}  // namespace emulate

}  // namespace cnnfast::cuda
