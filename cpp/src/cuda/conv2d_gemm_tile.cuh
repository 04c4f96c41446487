// conv2d_gemm_tile.cuh — the block program of the CUDA implicit GEMM (conv2d_implicit_gemm.cu):
// C[m, n] = Σ_k A(m, k)·B(k, n) for one (16·TM)×(16·TN) tile of 256 threads, each owning TM×TN
// outputs in registers. BK = 8 deep slices of A and B are double-buffered in shared memory; the
// next slice's gathers are in flight (registers) while the current one is multiplied, one barrier
// per slice. Operands are gathers with separable index math: element (f, v) of an operand, f its
// fixed index (the m of A, the n of B) and v the depth index, is
//     (h, w) = fixed(f).hw + vary(v).hw inside [0, H) × [0, W) ? src[fixed(f).off + vary(v).off] : 0
// so each thread decodes its fixed indices once and one depth index per slice (FastDiv, no
// division in the loop). Offsets are int32: the host splits the batch to keep every tensor of one
// launch under 2^31 elements. The same program runs on the host thread by thread (emulate_gemm),
// the test hook that checks the index math without a GPU.
#pragma once
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/runtime.cuh"

namespace cnnfast::cuda::gemm {

constexpr int NT = 256, BK = 8;
constexpr int kFar = -(1 << 29);  // a coordinate never inside a plane: marks rows/depth past the end

// n / d for 0 <= n < 2^31 and 1 <= d < 2^31 as a multiply-high and a shift (Granlund–Montgomery:
// m = ceil(2^p / d), p = 31 + ceil(log2 d)); the magic numbers are found on the host.
struct FastDiv {
  int d = 1;
  uint32_t mul = 0, shr = 0;
  FastDiv() = default;
  explicit FastDiv(int64_t divisor) : d(int(divisor)) {
    if (divisor < 1 || divisor >= (int64_t(1) << 31))
      throw std::invalid_argument("FastDiv: divisor out of range");
    if (d == 1) return;
    int l = 0;
    while ((int64_t(1) << l) < divisor) ++l;  // ceil(log2 d)
    const int p = 31 + l;
    mul = uint32_t(((uint64_t(1) << p) + uint64_t(d) - 1) / uint64_t(d));
    shr = uint32_t(p - 32);
  }
  CNNFAST_HD int div(int n) const {
    if (d == 1) return n;
#ifdef __CUDA_ARCH__
    return int(__umulhi(uint32_t(n), mul) >> shr);
#else
    return int(uint32_t((uint64_t(uint32_t(n)) * mul) >> 32) >> shr);
#endif
  }
};

// One part of an element's address: offset into src and the (h, w) coordinates it adds.
struct Point {
  int off, h, w;
};
CNNFAST_HD inline Point far_point() { return {0, kFar, 0}; }

// A plain strided matrix as an operand: element (f, k) of group g is src[g·group + f·fixed_step +
// k·depth_step] (no plane bounds: H = W = 1). kFast: f is the contiguous index (see Gather).
template <bool kFast>
struct Strided {
  static constexpr bool kFixedFast = kFast;
  const float* src;
  int H = 1, W = 1;
  int group, fixed_step, depth_step;
  CNNFAST_HD Point fixed(int g, int f) const { return {g * group + f * fixed_step, 0, 0}; }
  CNNFAST_HD Point vary(int, int k) const { return {k * depth_step, 0, 0}; }
};

// The tile shape: 16×16 threads, thread (tx, ty) owns rows tx·G + 16·G·i + e (G = min(TM, 4)
// consecutive rows per group, TM / G groups) and likewise columns with ty and TN.
template <int T>
struct Lanes {
  static constexpr int G = T < 4 ? T : 4, groups = T / G;
  CNNFAST_HD static int index(int t16, int i) { return t16 * G + 16 * G * (i / G) + i % G; }
};

template <int TM, int TN>
struct Config {
  static constexpr int BM = 16 * TM, BN = 16 * TN;
  static constexpr int LA = BM / 32, LB = BN / 32;  // elements each thread gathers per slice
  static constexpr int PA = BM + 4, PB = BN + 4;    // +4: varying-fast stores hit distinct banks
};

template <int TM, int TN>
struct SharedTiles {
  float a[2][BK][Config<TM, TN>::PA];
  float b[2][BK][Config<TM, TN>::PB];
};

// Which launch rows a block covers: group g, tile origin (row0, col0), depth [k_begin, k_end).
struct GemmDims {
  int rows, cols, depth;
  int depth_chunk;  // depth per block, a multiple of BK (== depth rounded up without a split)
  int splits;       // blocks along depth per group
  int group0;       // first group of this launch
  int col_block0;   // first column tile of this launch (gridDim.y holds at most 65535)
};

// A thread's share of one operand: L fixed indices f0 + 32·i and one depth index per slice.
// Fixed-fast operands (kFixedFast) give 32 consecutive threads consecutive fixed indices; the
// others give 8 consecutive threads the 8 depth indices of a slice (whichever is contiguous in
// memory, so that a warp's gathers coalesce).
template <int L>
struct Gather {
  Point fix[L];
  int kk;
  float v[L];

  template <class Op>
  CNNFAST_HD void init(int tid, int g, int f_begin, int f_limit, const Op& op) {
    const int f0 = Op::kFixedFast ? tid % 32 : tid / BK;
    kk = Op::kFixedFast ? tid / 32 : tid % BK;
CNNFAST_UNROLL
    for (int i = 0; i < L; ++i) {
      const int f = f_begin + f0 + 32 * i;
      fix[i] = f < f_limit ? op.fixed(g, f) : far_point();
    }
  }
  template <class Op>
  CNNFAST_HD void load(int g, int k0, int k_end, const Op& op) {
    const int k = k0 + kk;
    const Point q = k < k_end ? op.vary(g, k) : far_point();
CNNFAST_UNROLL
    for (int i = 0; i < L; ++i) {
      const int h = fix[i].h + q.h, w = fix[i].w + q.w;
      v[i] = (unsigned(h) < unsigned(op.H) && unsigned(w) < unsigned(op.W))
                 ? op.src[fix[i].off + q.off]
                 : 0.f;
    }
  }
  template <class Op, int P>
  CNNFAST_HD void commit(int tid, float (*tile)[P]) const {
    const int f0 = Op::kFixedFast ? tid % 32 : tid / BK;
CNNFAST_UNROLL
    for (int i = 0; i < L; ++i) tile[kk][f0 + 32 * i] = v[i];
  }
};

template <int G>
CNNFAST_HD inline void load_group(const float* p, float* out) {
#ifdef __CUDA_ARCH__
  if constexpr (G == 4) {
    const float4 t = *reinterpret_cast<const float4*>(p);
    out[0] = t.x, out[1] = t.y, out[2] = t.z, out[3] = t.w;
  } else if constexpr (G == 2) {
    const float2 t = *reinterpret_cast<const float2*>(p);
    out[0] = t.x, out[1] = t.y;
  } else {
    for (int e = 0; e < G; ++e) out[e] = p[e];
  }
#else
  for (int e = 0; e < G; ++e) out[e] = p[e];
#endif
}

// Everything one thread holds: its accumulators and its shares of the A and B gathers.
template <int TM, int TN>
struct ThreadState {
  float acc[TM][TN];
  Gather<Config<TM, TN>::LA> a;
  Gather<Config<TM, TN>::LB> b;
};

// The block program, phase by phase (the kernel runs each phase in every thread, then a barrier;
// emulate_gemm runs each phase thread after thread).
template <int TM, int TN, class OA, class OB, class ST>
struct Program {
  using Cfg = Config<TM, TN>;
  GemmDims d;
  OA oa;
  OB ob;
  ST st;
  int g, row0, col0, k_begin, k_end;

  CNNFAST_HD void locate(int bx, int by, int bz) {
    g = d.group0 + bz / d.splits;
    row0 = bx * Cfg::BM;
    col0 = (by + d.col_block0) * Cfg::BN;
    k_begin = (bz % d.splits) * d.depth_chunk;
    k_end = d.depth < k_begin + d.depth_chunk ? d.depth : k_begin + d.depth_chunk;
  }
  CNNFAST_HD void init(int tid, ThreadState<TM, TN>& s) const {
    for (int i = 0; i < TM; ++i)
      for (int j = 0; j < TN; ++j) s.acc[i][j] = 0.f;
    s.a.init(tid, g, row0, d.rows, oa);
    s.b.init(tid, g, col0, d.cols, ob);
  }
  CNNFAST_HD void load(int k0, ThreadState<TM, TN>& s) const {
    s.a.load(g, k0, k_end, oa);
    s.b.load(g, k0, k_end, ob);
  }
  CNNFAST_HD void commit(int tid, const ThreadState<TM, TN>& s, SharedTiles<TM, TN>& sh,
                         int buf) const {
    s.a.template commit<OA>(tid, sh.a[buf]);
    s.b.template commit<OB>(tid, sh.b[buf]);
  }
  CNNFAST_HD void multiply(int tid, ThreadState<TM, TN>& s, const SharedTiles<TM, TN>& sh,
                           int buf) const {
    using RA = Lanes<TM>;
    using RB = Lanes<TN>;
    const int tx = tid % 16, ty = tid / 16;
CNNFAST_UNROLL
    for (int kk = 0; kk < BK; ++kk) {
      float a[TM], b[TN];
CNNFAST_UNROLL
      for (int i = 0; i < RA::groups; ++i)
        load_group<RA::G>(&sh.a[buf][kk][RA::index(tx, i * RA::G)], a + i * RA::G);
CNNFAST_UNROLL
      for (int j = 0; j < RB::groups; ++j)
        load_group<RB::G>(&sh.b[buf][kk][RB::index(ty, j * RB::G)], b + j * RB::G);
CNNFAST_UNROLL
      for (int i = 0; i < TM; ++i)
CNNFAST_UNROLL
        for (int j = 0; j < TN; ++j) s.acc[i][j] = fmaf(a[i], b[j], s.acc[i][j]);
    }
  }
  CNNFAST_HD void store(int tid, const ThreadState<TM, TN>& s) const {
    const int tx = tid % 16, ty = tid / 16;
CNNFAST_UNROLL
    for (int i = 0; i < TM; ++i) {
      const int m = row0 + Lanes<TM>::index(tx, i);
      if (m >= d.rows) continue;
CNNFAST_UNROLL
      for (int j = 0; j < TN; ++j) {
        const int n = col0 + Lanes<TN>::index(ty, j);
        if (n < d.cols) st(g, m, n, s.acc[i][j]);
      }
    }
  }
};

template <int TM, int TN, class OA, class OB, class ST>
__global__ void __launch_bounds__(NT, 2) gemm_kernel(Program<TM, TN, OA, OB, ST> prog) {
  __shared__ __align__(16) SharedTiles<TM, TN> sh;
  ThreadState<TM, TN> s;
  const int tid = threadIdx.x;
  prog.locate(blockIdx.x, blockIdx.y, blockIdx.z);
  prog.init(tid, s);
  if (prog.k_begin < prog.k_end) {
    prog.load(prog.k_begin, s);
    prog.commit(tid, s, sh, 0);
    __syncthreads();
    int buf = 0;
    for (int k0 = prog.k_begin; k0 < prog.k_end; k0 += BK) {
      const bool more = k0 + BK < prog.k_end;
      if (more) prog.load(k0 + BK, s);  // in flight during the multiply
      prog.multiply(tid, s, sh, buf);
      if (more) prog.commit(tid, s, sh, buf ^ 1);
      __syncthreads();
      buf ^= 1;
    }
  }
  prog.store(tid, s);
}

// The same block program on the host, each phase thread after thread (test hook).
template <int TM, int TN, class OA, class OB, class ST>
void emulate_gemm(Program<TM, TN, OA, OB, ST> prog, int gx, int gy, int gz) {
  std::vector<ThreadState<TM, TN>> s(NT);
  auto sh = std::make_unique<SharedTiles<TM, TN>>();
  for (int bz = 0; bz < gz; ++bz)
    for (int by = 0; by < gy; ++by)
      for (int bx = 0; bx < gx; ++bx) {
        prog.locate(bx, by, bz);
        for (int t = 0; t < NT; ++t) prog.init(t, s[t]);
        int buf = 0;
        if (prog.k_begin < prog.k_end) {
          for (int t = 0; t < NT; ++t) prog.load(prog.k_begin, s[t]), prog.commit(t, s[t], *sh, 0);
          for (int k0 = prog.k_begin; k0 < prog.k_end; k0 += BK) {
            const bool more = k0 + BK < prog.k_end;
            for (int t = 0; t < NT; ++t) {
              if (more) prog.load(k0 + BK, s[t]);
              prog.multiply(t, s[t], *sh, buf);
            }
            if (more)
              for (int t = 0; t < NT; ++t) prog.commit(t, s[t], *sh, buf ^ 1);
            buf ^= 1;
          }
        }
        for (int t = 0; t < NT; ++t) prog.store(t, s[t]);
      }
}

// The depth split for `tiles` blocks when the caller leaves it to the rule, each block over at
// least 16 slices. Default: as many as fill one whole wave of `resident` blocks on `sms`
// multiprocessors (a second wave measured no faster on an H200 and doubles the atomic adds).
// CNNFAST_CUDA_SPLIT_RULE=balance (an A/B knob until a device times it): the split that least
// loads the busiest multiprocessor, ⌈tiles·s / sms⌉ blocks of ⌈slices / s⌉ + 4 slices (the 4: the
// block's adds into the sum), a lone block at 0.7 of a multiprocessor's rate; a split must win by
// 2 %. The default leaves 144 tiles on 132 SMs unsplit, two blocks on 12 of them; this takes 6.
inline int64_t auto_splits(int64_t tiles, int64_t depth, int resident, int sms) {
  const int64_t slices = (depth + BK - 1) / BK, most = std::min<int64_t>(depth / (16 * BK), 4096);
  const char* rule = std::getenv("CNNFAST_CUDA_SPLIT_RULE");
  if (!rule || std::strcmp(rule, "balance") != 0)
    return std::min<int64_t>(int64_t(std::max(resident, 1)) * sms / tiles, most);
  int64_t best = 1;
  double best_cost = 0;
  for (int64_t s = 1; s <= most; ++s) {
    const int64_t busiest = (tiles * s + sms - 1) / sms;
    const double rate = busiest == 1 ? 0.7 : 1.0;
    const double cost = double(busiest) * double((slices + s - 1) / s + 4) / rate;
    if (s == 1 || cost < 0.98 * best_cost) best = s, best_cost = cost;
  }
  return best;
}

// Runs C = A·B for groups [0, groups) with tile TM×TN; `splits` > 1 divides the depth over
// blocks (the store must then add); splits == 0: auto_splits picks.
template <int TM, int TN, class OA, class OB, class ST>
void run(bool on_host, const char* what, int64_t groups, int64_t rows, int64_t cols,
         int64_t depth, int64_t splits, const OA& oa, const OB& ob, const ST& st, int sms = 1) {
  using Cfg = Config<TM, TN>;
  if (groups == 0 || rows == 0 || cols == 0) return;
  const int64_t gx = (rows + Cfg::BM - 1) / Cfg::BM, gy = (cols + Cfg::BN - 1) / Cfg::BN;
  if (gx > INT_MAX || rows >= INT_MAX || cols >= INT_MAX || depth >= INT_MAX)
    throw std::invalid_argument(std::string(what) + ": tensor too large for the CUDA grid");
  GemmDims d{int(rows), int(cols), int(depth), 0, 1, 0, 0};
  if (splits == 0) {
    int resident = 2;  // the launch bound's minimum; the occupancy calculator knows better
    if (!on_host &&
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, gemm_kernel<TM, TN, OA, OB, ST>,
                                                      NT, 0) != cudaSuccess) {
      cudaGetLastError();
      resident = 2;
    }
    splits = auto_splits(gx * gy * groups, depth, resident, sms);
  }
  splits = std::max<int64_t>(1, splits);
  const int64_t chunk = ((depth + splits - 1) / splits + BK - 1) / BK * BK;
  d.depth_chunk = int(std::max<int64_t>(chunk, BK));
  d.splits = int(std::max<int64_t>(1, (depth + d.depth_chunk - 1) / d.depth_chunk));
  const int64_t per_launch = 65535 / d.splits;  // gridDim.z limit
  for (int64_t g0 = 0; g0 < groups; g0 += per_launch)
    for (int64_t c0 = 0; c0 < gy; c0 += 65535) {  // gridDim.y limit
      d.group0 = int(g0);
      d.col_block0 = int(c0);
      const int64_t gz = std::min(per_launch, groups - g0) * d.splits;
      const int64_t gyc = std::min<int64_t>(65535, gy - c0);
      Program<TM, TN, OA, OB, ST> prog{d, oa, ob, st, 0, 0, 0, 0, 0};
      if (on_host) {
        emulate_gemm(prog, int(gx), int(gyc), int(gz));
        continue;
      }
      gemm_kernel<TM, TN, OA, OB, ST>
          <<<dim3(unsigned(gx), unsigned(gyc), unsigned(gz)), NT>>>(prog);
      check(cudaGetLastError(), what, __FILE__, __LINE__);
    }
}

// Tile height/width (TM or TN, 2/4/8 → 32/64/128) for an output extent: the least padded work
// weighed by how well each width runs (narrow tiles load more per multiply-add): 147 columns
// take 3 × 64 rather than 2 × 128, 363 take 3 × 128, 25 take one 32.
inline int lanes_for(int64_t extent) {
  int best = 8;
  double best_cost = 0;
  for (int lanes : {8, 4, 2}) {
    const int64_t width = 16 * lanes, padded = (extent + width - 1) / width * width;
    const double cost = double(padded) / (lanes == 8 ? 1.0 : lanes == 4 ? 0.85 : 0.6);
    if (lanes == 8 || cost < best_cost) best = lanes, best_cost = cost;
  }
  return best;
}

// TM for a launch whose columns use TN: 128 rows unless that leaves fewer blocks than
// multiprocessors (then 64, then 32). (At fewer than two per multiprocessor, the rule before,
// 256 tiles of 128 rows went to 64-row tiles: dilated_3x3_d4's forward 0.78 → 0.89× cuDNN.)
inline int rows_lanes_for(int64_t rows, int64_t cols, int tn, int64_t other_blocks, int sms) {
  const int64_t col_tiles = (cols + 16 * tn - 1) / (16 * tn);
  int tm = 8;
  while (tm > 2 && ((rows + 16 * tm - 1) / (16 * tm)) * col_tiles * other_blocks < sms) tm /= 2;
  return tm;
}

// Calls fn(std::integral_constant<int, TM>, std::integral_constant<int, TN>) for tm, tn in {2,4,8}.
template <class Fn>
void with_tile(int tm, int tn, Fn&& fn) {
  auto by_tn = [&](auto tm_c) {
    if (tn == 2) fn(tm_c, std::integral_constant<int, 2>{});
    else if (tn == 4) fn(tm_c, std::integral_constant<int, 4>{});
    else fn(tm_c, std::integral_constant<int, 8>{});
  };
  if (tm == 2) by_tn(std::integral_constant<int, 2>{});
  else if (tm == 4) by_tn(std::integral_constant<int, 4>{});
  else by_tn(std::integral_constant<int, 8>{});
}

// run<TM, TN> with the tile lanes chosen at run time (tm, tn in {2, 4, 8}).
template <class OA, class OB, class ST>
void run_tiled(bool on_host, const char* what, int tm, int tn, int64_t groups, int64_t rows,
               int64_t cols, int64_t depth, int64_t splits, const OA& a, const OB& b,
               const ST& st, int sms = 1) {
  with_tile(tm, tn, [&](auto TM, auto TN) {
    run<decltype(TM)::value, decltype(TN)::value>(on_host, what, groups, rows, cols, depth, splits,
                                                  a, b, st, sms);
  });
}

}  // namespace cnnfast::cuda::gemm
