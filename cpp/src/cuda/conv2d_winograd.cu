// conv2d_winograd.cu — conv2d on CUDA by Winograd F(m x m, 3x3), m = 2 or 4, α = m + 2, for
// 3x3 filters at unit stride (any padding, dilation, groups). Not fused: per batch chunk
//   V[ξ] = (Bᵀ d B)[ξ] over the input tiles              (InputTransform, a thread per tile)
//   M[ξ] = U[ξ] · V[ξ], ξ < α², per group                 (α²·G GEMMs on the implicit-GEMM tiles)
//   y    = act(Aᵀ M A + b)                                (OutputTransform)
// with U = G w Gᵀ transformed once per call (the per-tile programs: conv2d_winograd_tiles.cuh).
// Backward-data is that forward on dy with the flipped, channel-transposed filters and padding
// 2·dilation − pad; its tiles cover all of dx (no zeroing pass). The weight gradient transforms x
// (V) and dy (A dy Aᵀ), sums dU[ξ] = Σ_tiles dM[ξ]·V[ξ]ᵀ (the sum split over blocks with atomic
// adds, as the implicit weight gradient) and adds Gᵀ dU G to dw.
// α²/m² fewer multiplies than the implicit GEMM (2.25x for F2, 4x for F4) for α²/m² times the
// activations' bytes through scratch: V and M hold at most scratch_cap() floats each (bigger
// batches run in chunks of images), or one image's worth where that is more. Reached by
// algo='winograd' | 'winograd_f2' | 'winograd_f4';
// 'auto' keeps the implicit GEMM until a device A/B (bench/bench_ops.py --device cuda
// --algo auto,winograd) says where this pays.
#include <algorithm>
#include <cstdlib>
#include <string>

#include "cuda/conv2d_common.cuh"
#include "cuda/conv2d_gemm_tile.cuh"
#include "cuda/conv2d_winograd_tiles.cuh"

namespace cnnfast::cuda {
namespace {

using gemm::FastDiv;

constexpr int64_t kScratchElems = int64_t(1) << 25;  // per transformed buffer (128 MiB)
constexpr int64_t kOffsetLimit = int64_t(1) << 30;   // the programs' int32 offsets

// CNNFAST_CUDA_WINO_SCRATCH=<floats> (an A/B knob until a device times it): a smaller cap per
// buffer, e.g. 4194304 (16 MiB), so that V and M of a chunk stay in the 50 MB L2 between the
// transform that writes them and the kernel that reads them (more, smaller launches).
int64_t scratch_cap() {
  const char* v = std::getenv("CNNFAST_CUDA_WINO_SCRATCH");
  const long long n = v ? std::atoll(v) : 0;
  return n > 0 ? std::min<int64_t>(n, kScratchElems) : kScratchElems;
}

// The convolution the transforms run: in (N, Cin, Hin, Win) → out (N, Kout, Hout, Wout), output
// row h reading input rows h − pt + dh·r (r < 3); likewise columns.
struct Plane {
  int64_t N, G, Cin, Hin, Win, Kout, Hout, Wout, pt, pl, dh, dw;
};
Plane forward_plane(const Conv2dParams& p) {
  return {p.N, p.groups, p.C, p.H, p.W, p.K, p.P, p.Q, p.pad_top, p.pad_left, p.dil_h, p.dil_w};
}
// dx[h] = Σ_r dy[h + pt − dh·r]·w[r] = Σ_r' dy[h − (2·dh − pt) + dh·r']·w[2 − r']
Plane data_plane(const Conv2dParams& p) {
  return {p.N, p.groups, p.K, p.P, p.Q, p.C, p.H, p.W, 2 * p.dil_h - p.pad_top,
          2 * p.dil_w - p.pad_left, p.dil_h, p.dil_w};
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Tiling {
  int64_t rows, cols, per_image;  // tile rows (all row phases), tile columns, their product
};
Tiling tiling(const Plane& q, int m) {
  const int64_t rows = q.dh * ceil_div(ceil_div(q.Hout, q.dh), m);
  const int64_t cols = q.dw * ceil_div(ceil_div(q.Wout, q.dw), m);
  return {rows, cols, rows * cols};
}

// Images per chunk; 0 when one image is too large for the int32 offsets and coordinates.
int64_t chunk_images(const Plane& q, int m) {
  const Tiling t = tiling(q, m);
  if (t.per_image == 0) return std::max<int64_t>(1, q.N);  // an empty output plane: no tiles
  const int64_t a2 = int64_t(m + 2) * (m + 2);
  const int64_t in = q.Cin * q.Hin * q.Win, out = q.Kout * q.Hout * q.Wout;
  const int64_t scratch = a2 * std::max(q.Cin, q.Kout) * t.per_image;
  const int64_t reach = std::max(q.Hout, q.Hin) + std::max(q.Wout, q.Win) +
                        (q.dh + q.dw) * 2 * (m + 2) + std::abs(q.pt) + std::abs(q.pl);
  if (std::max({in, out, scratch, reach, a2 * q.Kout * (q.Cin / q.G)}) >= kOffsetLimit) return 0;
  return std::max<int64_t>(
      1, std::min({q.N, scratch_cap() / scratch, kOffsetLimit / std::max<int64_t>(in, 1),
                   kOffsetLimit / std::max<int64_t>(out, 1)}));
}

// The emulation runs chunks of at most 2 images, so that the host tests cover both the chunk
// offsets and tiles running across images.
int64_t chunk_of(const Exec& e, const Plane& q, int m) {
  return e.on_host ? std::min<int64_t>(2, chunk_images(q, m)) : chunk_images(q, m);
}

wino::TileGrid grid_of(const Plane& q, const Tiling& t, int m) {
  return {FastDiv(t.per_image), FastDiv(t.cols), FastDiv(q.dh), FastDiv(q.dw), m,
          int(q.Hin), int(q.Win), int(q.Hout), int(q.Wout), int(q.pt), int(q.pl)};
}

// ---- the transformed-domain GEMM operands (group gg = ξ·G + g) -------------------------------
// mt[gg][k][t] = v
struct StoreTransformed {
  float* mt;
  int KgT, T;
  CNNFAST_HD void operator()(int gg, int t, int k, float v) const { mt[gg * KgT + k * T + t] = v; }
};
// du[gg][k][c] += v
struct AddFilterGrad {
  float* du;
  int KgCg, Cg;
  CNNFAST_HD void operator()(int gg, int k, int c, float v) const {
    atomic_add(&du[gg * KgCg + k * Cg + c], v);
  }
};

// out = act(conv3x3(in, u) + b) over plane q, u the transformed filters [α²][Kout][Cin/G].
template <int M>
void convolve(const Exec& e, const Plane& q, float* out, const float* in, const float* u,
              const float* b, bool relu) {
  constexpr int64_t A2 = (M + 2) * (M + 2);
  const Tiling t = tiling(q, M);
  const int64_t per = chunk_of(e, q, M), Cg = q.Cin / q.G, Kg = q.Kout / q.G;
  const int64_t most = std::min(per, q.N) * t.per_image;
  Buffer v(e.on_host, A2 * q.Cin * most), mt(e.on_host, A2 * q.Kout * most);
  const wino::TileGrid grid = grid_of(q, t, M);
  for (int64_t n0 = 0; n0 < q.N; n0 += per) {
    const int64_t T = std::min(per, q.N - n0) * t.per_image;
    for_each_index(e.on_host, q.Cin * T,
                   wino::InputTransform<M>{v.get(), in + n0 * q.Cin * q.Hin * q.Win, grid,
                                           FastDiv(T), int(q.Cin)},
                   "launch of conv2d Winograd (input transform)");
    const gemm::Strided<true> A{v.get(), 1, 1, int(Cg * T), 1, int(T)};     // A(t, c) = v[gg][c][t]
    const gemm::Strided<false> B{u, 1, 1, int(Kg * Cg), int(Cg), 1};        // B(c, k) = u[gg][k][c]
    const int tn = gemm::lanes_for(Kg), tm = gemm::rows_lanes_for(T, Kg, tn, A2 * q.G, e.sms);
    gemm::run_tiled(e.on_host, "launch of conv2d Winograd (transformed GEMMs)", tm, tn, A2 * q.G,
                    T, Kg, Cg, 1, A, B, StoreTransformed{mt.get(), int(Kg * T), int(T)});
    for_each_index(e.on_host, q.Kout * T,
                   wino::OutputTransform<M>{out + n0 * q.Kout * q.Hout * q.Wout, mt.get(), b,
                                            grid, FastDiv(T), int(q.Kout), relu},
                   "launch of conv2d Winograd (output transform)");
  }
}

template <int M>
void forward_m(const Exec& e, const Conv2dParams& p, bool for_data, float* out, const float* in,
               const float* w, const float* b, bool relu) {
  constexpr int64_t A2 = (M + 2) * (M + 2);
  const int64_t Cg = p.Cg(), Kg = p.Kg();
  Buffer u(e.on_host, A2 * p.K * Cg);
  for_each_index(e.on_host, p.K * Cg,
                 wino::FilterTransform<M>{u.get(), w, FastDiv(Cg), FastDiv(Kg), int(p.K), for_data},
                 "launch of conv2d Winograd (filter transform)");
  convolve<M>(e, for_data ? data_plane(p) : forward_plane(p), out, in, u.get(), b, relu);
}

template <int M>
void weight_grad_m(const Exec& e, const Conv2dParams& p, float* dw, const float* dy,
                   const float* x) {
  constexpr int64_t A2 = (M + 2) * (M + 2);
  const Plane q = forward_plane(p);
  const Tiling t = tiling(q, M);
  const int64_t per = chunk_of(e, q, M), Cg = p.Cg(), Kg = p.Kg();
  const int64_t most = std::min(per, p.N) * t.per_image;
  Buffer du(e.on_host, A2 * p.K * Cg, /*zeroed=*/true);
  Buffer v(e.on_host, A2 * p.C * most), dm(e.on_host, A2 * p.K * most);
  const wino::TileGrid grid = grid_of(q, t, M);
  const int tm = gemm::lanes_for(Kg), tn = gemm::lanes_for(Cg);
  for (int64_t n0 = 0; n0 < p.N; n0 += per) {
    const int64_t T = std::min(per, p.N - n0) * t.per_image;
    for_each_index(e.on_host, p.C * T,
                   wino::InputTransform<M>{v.get(), x + n0 * p.C * p.H * p.W, grid, FastDiv(T),
                                           int(p.C)},
                   "launch of conv2d Winograd (input transform)");
    for_each_index(e.on_host, p.K * T,
                   wino::AdjointOutput<M>{dm.get(), dy + n0 * p.K * p.P * p.Q, grid, FastDiv(T),
                                          int(p.K)},
                   "launch of conv2d Winograd (output-gradient transform)");
    const gemm::Strided<false> A{dm.get(), 1, 1, int(Kg * T), int(T), 1};  // A(k, t) = dm[gg][k][t]
    const gemm::Strided<false> B{v.get(), 1, 1, int(Cg * T), int(T), 1};   // B(t, c) = v[gg][c][t]
    gemm::run_tiled(e.on_host, "launch of conv2d Winograd (weight-gradient GEMMs)", tm, tn,
                    A2 * p.groups, Kg, Cg, T, 0, A, B,
                    AddFilterGrad{du.get(), int(Kg * Cg), int(Cg)}, e.sms);
  }
  for_each_index(e.on_host, p.K * Cg, wino::AdjointFilter<M>{dw, du.get(), int(p.K * Cg)},
                 "launch of conv2d Winograd (filter-gradient transform)");
}

}  // namespace

int winograd_tile_for(const Conv2dParams& p, ConvAlgo algo, ConvPass pass) {
  switch (algo) {
    case ConvAlgo::automatic:
    case ConvAlgo::implicit: return 0;
    case ConvAlgo::winograd:
    case ConvAlgo::winograd_f2:
    case ConvAlgo::winograd_f4: break;
    default:
      throw std::invalid_argument("algo: the CUDA backend runs 'auto', 'implicit', 'winograd', "
                                  "'winograd_f2' or 'winograd_f4' ('gemm', 'direct' and 'ref' "
                                  "are CPU algorithms)");
  }
  if (p.R != 3 || p.S != 3 || p.stride_h != 1 || p.stride_w != 1)
    throw std::invalid_argument(
        "algo='winograd' needs a 3x3 kernel (in height and width) with stride 1 there; got "
        "kernel " + std::to_string(p.R) + "x" + std::to_string(p.S) + ", stride (" +
        std::to_string(p.stride_h) + ", " + std::to_string(p.stride_w) + ")");
  // 'winograd': the CPU's tile rule (cpu::winograd_tile): F4 from 48 of its tiles an image up.
  int m = winograd_tile_of(algo);
  if (m == 0)
    m = p.dil_h * p.dil_w * ceil_div(ceil_div(p.P, p.dil_h), 4) *
                    ceil_div(ceil_div(p.Q, p.dil_w), 4) >= 48
            ? 4
            : 2;
  if (chunk_images(pass == ConvPass::data ? data_plane(p) : forward_plane(p), m) == 0)
    throw std::invalid_argument("algo='winograd' (CUDA): one image's transformed tiles reach "
                                "2^30 elements (the kernels' offsets are 32-bit)");
  return m;
}

void winograd_forward(const Exec& e, int m, const Conv2dParams& p, float* y, const float* x,
                      const float* w, const float* b, bool relu) {
  if (p.N == 0 || p.P == 0 || p.Q == 0) return;
  if (m == 2) forward_m<2>(e, p, false, y, x, w, b, relu);
  else forward_m<4>(e, p, false, y, x, w, b, relu);
}

void winograd_backward_data(const Exec& e, int m, const Conv2dParams& p, float* dx,
                            const float* dy, const float* w) {
  if (p.N == 0 || p.H == 0 || p.W == 0) return;
  if (m == 2) forward_m<2>(e, p, true, dx, dy, w, nullptr, false);
  else forward_m<4>(e, p, true, dx, dy, w, nullptr, false);
}

void winograd_backward_weight(const Exec& e, int m, const Conv2dParams& p, float* dw,
                              const float* dy, const float* x) {
  if (p.N == 0 || p.P == 0 || p.Q == 0) return;
  if (m == 2) weight_grad_m<2>(e, p, dw, dy, x);
  else weight_grad_m<4>(e, p, dw, dy, x);
}

}  // namespace cnnfast::cuda
