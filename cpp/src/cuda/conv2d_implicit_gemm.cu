// conv2d_implicit_gemm.cu — conv2d forward, backward-data and backward-weight on CUDA as implicit
// GEMMs (no im2col buffer): one tiled kernel computes C[row, col] = Σ_k A(row, k)·B(k, col) per
// group g (blockIdx.z), its operands gathered straight from the tensors by small functors. Each
// block stages BK-deep slices of a BM-row A tile and a BN-column B tile in shared memory; each
// of its 256 threads owns 4×4 outputs (rows tx + 16i, columns ty + 16j).
//   forward:         rows = N·P·Q (output pixels), cols = K/G,      depth = C/G·R·S
//   backward-data:   rows = N·H·W (input pixels),  cols = C/G,      depth = K/G·R·S
//   backward-weight: rows = K/G,                   cols = C/G·R·S,  depth = N·P·Q (split over
//                    blocks, accumulated with atomicAdd — parameter gradients accumulate anyway)
// Layouts: x (N, C, H, W), w (K, C/G, R, S), y (N, K, P, Q). Index math in int64.
#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#include "cuda/runtime.cuh"

namespace cnnfast::cuda {
namespace {

constexpr int BM = 64, BN = 64, BK = 16, NT = 256;

struct Geom {  // Conv2dParams as plain fields usable on the device
  int64_t N, C, H, W, K, R, S, P, Q, sh, sw, pt, pl, dh, dw, Cg, Kg;
};

Geom geom_of(const Conv2dParams& p) {
  return {p.N,        p.C,        p.H,       p.W,        p.K,     p.R,     p.S,      p.P,    p.Q,
          p.stride_h, p.stride_w, p.pad_top, p.pad_left, p.dil_h, p.dil_w, p.Cg(), p.Kg()};
}

struct GemmDims {
  int64_t rows, cols, depth;
  int64_t depth_chunk;  // depth per block (a multiple of BK); == depth without a split
  int64_t splits;       // blocks along depth per group
  int64_t group0;       // first group of this launch
};

// What block (bx, by, bz) computes: group g, the tile at (row0, col0), depth [k_begin, k_end).
struct BlockWork {
  int64_t g, row0, col0, k_begin, k_end;
};
CNNFAST_HD inline BlockWork block_work(const GemmDims& d, int64_t bx, int64_t by, int64_t bz) {
  BlockWork w;
  w.g = d.group0 + bz / d.splits;
  w.row0 = bx * BM;
  w.col0 = by * BN;
  w.k_begin = (bz % d.splits) * d.depth_chunk;
  w.k_end = d.depth < w.k_begin + d.depth_chunk ? d.depth : w.k_begin + d.depth_chunk;
  return w;
}

// Phase 1, thread tid's share of the A (BM × BK) and B (BK × BN) tiles at depth k0; consecutive
// threads walk the operand's contiguous dimension (coalesced gathers). Zeros outside.
template <bool A_DEPTH_FAST, bool B_DEPTH_FAST, class GA, class GB>
CNNFAST_HD inline void load_tiles(int tid, const GemmDims& d, const BlockWork& w, int64_t k0,
                                  const GA& ga, const GB& gb, float (*As)[BM + 1],
                                  float (*Bs)[BN + 1]) {
  for (int e = tid; e < BM * BK; e += NT) {
    const int mi = A_DEPTH_FAST ? e / BK : e % BM;
    const int ki = A_DEPTH_FAST ? e % BK : e / BM;
    const int64_t m = w.row0 + mi, k = k0 + ki;
    As[ki][mi] = (m < d.rows && k < w.k_end) ? ga(w.g, m, k) : 0.f;
  }
  for (int e = tid; e < BN * BK; e += NT) {
    const int ni = B_DEPTH_FAST ? e / BK : e % BN;
    const int ki = B_DEPTH_FAST ? e % BK : e / BN;
    const int64_t n = w.col0 + ni, k = k0 + ki;
    Bs[ki][ni] = (n < d.cols && k < w.k_end) ? gb(w.g, k, n) : 0.f;
  }
}

// Phase 2: thread tid's 4×4 outputs (rows tx + 16i, columns ty + 16j) += the BK-slice product.
CNNFAST_HD inline void multiply_tiles(int tid, const float (*As)[BM + 1],
                                      const float (*Bs)[BN + 1], float (*acc)[4]) {
  const int tx = tid % 16, ty = tid / 16;
CNNFAST_UNROLL
  for (int kk = 0; kk < BK; ++kk) {
    float a[4], b[4];
CNNFAST_UNROLL
    for (int i = 0; i < 4; ++i) a[i] = As[kk][tx + 16 * i];
CNNFAST_UNROLL
    for (int j = 0; j < 4; ++j) b[j] = Bs[kk][ty + 16 * j];
CNNFAST_UNROLL
    for (int i = 0; i < 4; ++i)
CNNFAST_UNROLL
      for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
  }
}

// Phase 3: thread tid's outputs to the tensor.
template <class Store>
CNNFAST_HD inline void store_tile(int tid, const GemmDims& d, const BlockWork& w, const Store& st,
                                  const float (*acc)[4]) {
  const int tx = tid % 16, ty = tid / 16;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      const int64_t m = w.row0 + tx + 16 * i, n = w.col0 + ty + 16 * j;
      if (m < d.rows && n < d.cols) st(w.g, m, n, acc[i][j]);
    }
}

template <class GatherA, class GatherB, class Store, bool A_DEPTH_FAST, bool B_DEPTH_FAST>
__global__ void __launch_bounds__(NT)
    implicit_gemm_kernel(GemmDims d, GatherA ga, GatherB gb, Store st) {
  __shared__ float As[BK][BM + 1];  // +1: the depth-fast stores hit distinct banks
  __shared__ float Bs[BK][BN + 1];
  const BlockWork w = block_work(d, blockIdx.x, blockIdx.y, blockIdx.z);
  float acc[4][4] = {};
  for (int64_t k0 = w.k_begin; k0 < w.k_end; k0 += BK) {
    load_tiles<A_DEPTH_FAST, B_DEPTH_FAST>(threadIdx.x, d, w, k0, ga, gb, As, Bs);
    __syncthreads();
    multiply_tiles(threadIdx.x, As, Bs, acc);
    __syncthreads();
  }
  store_tile(threadIdx.x, d, w, st, acc);
}

// The same block program run on the host, thread after thread within each phase (test hook).
template <bool A_DEPTH_FAST, bool B_DEPTH_FAST, class GA, class GB, class ST>
void emulate_blocks(const GemmDims& d, int64_t gx, int64_t gy, int64_t gz, const GA& ga,
                    const GB& gb, const ST& st) {
  std::vector<float> acc(size_t(NT) * 16), a_tile(BK * (BM + 1)), b_tile(BK * (BN + 1));
  auto* As = reinterpret_cast<float(*)[BM + 1]>(a_tile.data());
  auto* Bs = reinterpret_cast<float(*)[BN + 1]>(b_tile.data());
  for (int64_t bz = 0; bz < gz; ++bz)
    for (int64_t by = 0; by < gy; ++by)
      for (int64_t bx = 0; bx < gx; ++bx) {
        const BlockWork w = block_work(d, bx, by, bz);
        std::fill(acc.begin(), acc.end(), 0.f);
        auto acc_of = [&](int t) { return reinterpret_cast<float(*)[4]>(&acc[size_t(t) * 16]); };
        for (int64_t k0 = w.k_begin; k0 < w.k_end; k0 += BK) {
          for (int t = 0; t < NT; ++t)
            load_tiles<A_DEPTH_FAST, B_DEPTH_FAST>(t, d, w, k0, ga, gb, As, Bs);
          for (int t = 0; t < NT; ++t) multiply_tiles(t, As, Bs, acc_of(t));
        }
        for (int t = 0; t < NT; ++t) store_tile(t, d, w, st, acc_of(t));
      }
}

int multiprocessors() {
  static const int n = [] {
    int v = 0, dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
      cudaGetLastError();
      return 100;
    }
    return v;
  }();
  return n;
}

// Runs the GEMM for every group, on the device or (on_host, a test hook) emulated; `splits` > 1
// divides the depth over blocks (Store must add).
template <bool A_DEPTH_FAST, bool B_DEPTH_FAST, class GA, class GB, class ST>
void run_gemm(bool on_host, const char* what, int64_t groups, int64_t rows, int64_t cols,
              int64_t depth, int64_t splits, GA ga, GB gb, ST st) {
  if (groups == 0 || rows == 0 || cols == 0 || depth == 0) return;
  const int64_t gx = (rows + BM - 1) / BM, gy = (cols + BN - 1) / BN;
  if (gx > INT_MAX || gy > 65535)
    throw std::invalid_argument(std::string(what) + ": tensor too large for the CUDA grid");
  GemmDims d{rows, cols, depth, 0, 0, 0};
  d.depth_chunk = ((depth + splits - 1) / splits + BK - 1) / BK * BK;
  d.splits = (depth + d.depth_chunk - 1) / d.depth_chunk;  // no empty split
  const int64_t per_launch = 65535 / d.splits;             // gridDim.z limit
  for (int64_t g0 = 0; g0 < groups; g0 += per_launch) {
    d.group0 = g0;
    const int64_t gz = std::min(per_launch, groups - g0) * d.splits;
    if (on_host) {
      emulate_blocks<A_DEPTH_FAST, B_DEPTH_FAST>(d, gx, gy, gz, ga, gb, st);
      continue;
    }
    implicit_gemm_kernel<GA, GB, ST, A_DEPTH_FAST, B_DEPTH_FAST>
        <<<dim3(unsigned(gx), unsigned(gy), unsigned(gz)), NT>>>(d, ga, gb, st);
    check(cudaGetLastError(), what, __FILE__, __LINE__);
  }
}

// ---- forward ---------------------------------------------------------------------------------
// A(m = (n, p, q), k = (c, r, s)) = x[n, g·Cg + c, p·sh − pt + r·dh, q·sw − pl + s·dw] (0 outside)
struct FwdInput {
  const float* x;
  Geom c;
  CNNFAST_HD float operator()(int64_t g, int64_t m, int64_t k) const {
    const int64_t q = m % c.Q, p = (m / c.Q) % c.P, n = m / (c.P * c.Q);
    const int64_t s = k % c.S, r = (k / c.S) % c.R, ci = k / (c.R * c.S);
    const int64_t h = p * c.sh - c.pt + r * c.dh, w = q * c.sw - c.pl + s * c.dw;
    if (h < 0 || h >= c.H || w < 0 || w >= c.W) return 0.f;
    return x[((n * c.C + g * c.Cg + ci) * c.H + h) * c.W + w];
  }
};
// B(k = (c, r, s), j) = w[g·Kg + j, c, r, s]
struct FwdWeight {
  const float* w;
  int64_t Kg, CgRS;
  CNNFAST_HD float operator()(int64_t g, int64_t k, int64_t j) const {
    return w[(g * Kg + j) * CgRS + k];
  }
};
// y[n, g·Kg + j, p, q] = act(v + b[g·Kg + j])
struct FwdStore {
  float* y;
  const float* b;
  int64_t K, Kg, PQ;
  bool relu;
  CNNFAST_HD void operator()(int64_t g, int64_t m, int64_t j, float v) const {
    const int64_t n = m / PQ, pq = m % PQ, k = g * Kg + j;
    if (b) v += b[k];
    if (relu) v = v < 0.f ? 0.f : v;  // keeps NaN, as the CPU epilogue
    y[(n * K + k) * PQ + pq] = v;
  }
};

// ---- backward-data ------------------------------------------------------------------------------
// A(m = (n, h, w), k = (j, r, s)) = dy[n, g·Kg + j, p, q] for the (p, q) with
// p·sh − pt + r·dh = h and q·sw − pl + s·dw = w (0 when there is none).
struct DataGradOut {
  const float* dy;
  Geom c;
  CNNFAST_HD float operator()(int64_t g, int64_t m, int64_t k) const {
    const int64_t w = m % c.W, h = (m / c.W) % c.H, n = m / (c.H * c.W);
    const int64_t s = k % c.S, r = (k / c.S) % c.R, j = k / (c.R * c.S);
    const int64_t hp = h + c.pt - r * c.dh, wq = w + c.pl - s * c.dw;
    if (hp < 0 || wq < 0 || hp % c.sh != 0 || wq % c.sw != 0) return 0.f;
    const int64_t p = hp / c.sh, q = wq / c.sw;
    if (p >= c.P || q >= c.Q) return 0.f;
    return dy[((n * c.K + g * c.Kg + j) * c.P + p) * c.Q + q];
  }
};
// B(k = (j, r, s), ci) = w[g·Kg + j, ci, r, s]
struct DataWeight {
  const float* w;
  int64_t Kg, Cg, RS;
  CNNFAST_HD float operator()(int64_t g, int64_t k, int64_t ci) const {
    const int64_t rs = k % RS, j = k / RS;
    return w[((g * Kg + j) * Cg + ci) * RS + rs];
  }
};
// dx[n, g·Cg + ci, h, w] = v (overwrites)
struct DataStore {
  float* dx;
  int64_t C, Cg, HW;
  CNNFAST_HD void operator()(int64_t g, int64_t m, int64_t ci, float v) const {
    const int64_t n = m / HW, hw = m % HW;
    dx[(n * C + g * Cg + ci) * HW + hw] = v;
  }
};

// ---- backward-weight ----------------------------------------------------------------------------
// A(j, k = (n, p, q)) = dy[n, g·Kg + j, p, q]
struct WeightGradOut {
  const float* dy;
  int64_t K, Kg, PQ;
  CNNFAST_HD float operator()(int64_t g, int64_t j, int64_t k) const {
    const int64_t n = k / PQ, pq = k % PQ;
    return dy[(n * K + g * Kg + j) * PQ + pq];
  }
};
// B(k = (n, p, q), col = (ci, r, s)) = x[n, g·Cg + ci, p·sh − pt + r·dh, q·sw − pl + s·dw]
struct WeightInput {
  const float* x;
  Geom c;
  CNNFAST_HD float operator()(int64_t g, int64_t k, int64_t col) const {
    const int64_t q = k % c.Q, p = (k / c.Q) % c.P, n = k / (c.P * c.Q);
    const int64_t s = col % c.S, r = (col / c.S) % c.R, ci = col / (c.R * c.S);
    const int64_t h = p * c.sh - c.pt + r * c.dh, w = q * c.sw - c.pl + s * c.dw;
    if (h < 0 || h >= c.H || w < 0 || w >= c.W) return 0.f;
    return x[((n * c.C + g * c.Cg + ci) * c.H + h) * c.W + w];
  }
};
// dw[g·Kg + j, col] += v (several blocks add into one element when the depth is split)
struct WeightStore {
  float* dw;
  int64_t Kg, CgRS;
  CNNFAST_HD void operator()(int64_t g, int64_t j, int64_t col, float v) const {
    atomic_add(&dw[(g * Kg + j) * CgRS + col], v);
  }
};

void forward(bool on_host, const Conv2dParams& p, float* y, const float* x, const float* w,
             const float* b, bool relu) {
  const Geom c = geom_of(p);
  run_gemm<false, true>(on_host, "launch of conv2d forward (implicit GEMM)", p.groups,
                        p.N * p.P * p.Q, c.Kg, c.Cg * p.R * p.S, 1, FwdInput{x, c},
                        FwdWeight{w, c.Kg, c.Cg * p.R * p.S},
                        FwdStore{y, b, p.K, c.Kg, p.P * p.Q, relu});
}

void backward_data(bool on_host, const Conv2dParams& p, float* dx, const float* dy,
                   const float* w) {
  const Geom c = geom_of(p);
  run_gemm<false, true>(on_host, "launch of conv2d backward-data (implicit GEMM)", p.groups,
                        p.N * p.H * p.W, c.Cg, c.Kg * p.R * p.S, 1, DataGradOut{dy, c},
                        DataWeight{w, c.Kg, c.Cg, p.R * p.S}, DataStore{dx, p.C, c.Cg, p.H * p.W});
}

// dw += dy ⋆ x. Few output tiles and a long sum: the sum is split so that ~4 blocks run per
// multiprocessor, each over at least 8 BK-slices.
void backward_weight(bool on_host, int sms, const Conv2dParams& p, float* dw, const float* dy,
                     const float* x) {
  const Geom c = geom_of(p);
  const int64_t PQ = p.P * p.Q, depth = p.N * PQ, cols = c.Cg * p.R * p.S;
  const int64_t tiles = ((c.Kg + BM - 1) / BM) * ((cols + BN - 1) / BN) * p.groups;
  int64_t splits = (4 * int64_t(sms) + tiles - 1) / tiles;
  splits = std::max<int64_t>(1, std::min<int64_t>({splits, depth / (8 * BK), 4096}));
  run_gemm<true, true>(on_host, "launch of conv2d backward-weight (implicit GEMM)", p.groups,
                       c.Kg, cols, depth, splits, WeightGradOut{dy, p.K, c.Kg, PQ},
                       WeightInput{x, c}, WeightStore{dw, c.Kg, cols});
}

}  // namespace

void conv2d_forward(const Conv2dParams& p, float* y, const float* x, const float* w,
                    const float* b, bool relu) {
  forward(false, p, y, x, w, b, relu);
}

void conv2d_backward_data(const Conv2dParams& p, float* dx, const float* dy, const float* w) {
  backward_data(false, p, dx, dy, w);
}

void conv2d_backward_weight(const Conv2dParams& p, float* dw, float* db, const float* dy,
                            const float* x) {
  if (dw) backward_weight(false, multiprocessors(), p, dw, dy, x);
  if (db) bias_grad(p.N, p.K, p.P * p.Q, db, dy);
}

namespace emulate {
void conv2d_forward(const Conv2dParams& p, float* y, const float* x, const float* w,
                    const float* b, bool relu) {
  forward(true, p, y, x, w, b, relu);
}
void conv2d_backward_data(const Conv2dParams& p, float* dx, const float* dy, const float* w) {
  backward_data(true, p, dx, dy, w);
}
void conv2d_backward_weight(const Conv2dParams& p, float* dw, const float* dy, const float* x,
                            int multiprocessors) {
  backward_weight(true, multiprocessors, p, dw, dy, x);
}
}  // namespace emulate

}  // namespace cnnfast::cuda
