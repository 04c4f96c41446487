// gemm.cpp — loops around the microkernel: jc (NC) → pc (KC, pack B) → ic (MC, pack A, unless
// pre-packed once by gemm_pack_a for several GEMMs) → jr → ir.
// Packing and blocking live here; register tiles in cpu/kernels; threads split C here only.
#include "cpu/gemm.h"

#include <algorithm>
#include <vector>

#include "cpu/dispatch.h"
#include "cpu/parallel.h"
#include "cpu/workspace.h"

namespace cnnfast {
namespace {

// One full panel of MR rows (a compile-time MR: the row loop unrolls to MR loads and stores).
template <int MR, class T>
void pack_a_panel(int64_t kc, const T* a, int64_t rsa, int64_t csa, T* ap) {
  for (int64_t p = 0; p < kc; ++p, ap += MR)
    for (int i = 0; i < MR; ++i) ap[i] = a[i * rsa + p * csa];
}

// ap is (ceil(mc/MR) panels) x (kc, MR); rows past mc are zero.
template <class T>
void pack_a(int64_t mc, int64_t kc, const T* a, int64_t rsa, int64_t csa, int MR, T* ap) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR) {
    const int64_t rows = std::min<int64_t>(MR, mc - i0);
    if (rows == MR && (MR == 6 || MR == 12)) {
      if (MR == 6) pack_a_panel<6>(kc, a + i0 * rsa, rsa, csa, ap);
      else pack_a_panel<12>(kc, a + i0 * rsa, rsa, csa, ap);
      ap += kc * MR;
      continue;
    }
    for (int64_t p = 0; p < kc; ++p) {
      const T* src = a + i0 * rsa + p * csa;
      int64_t i = 0;
      for (; i < rows; ++i) ap[i] = src[i * rsa];
      for (; i < MR; ++i) ap[i] = T(0);
      ap += MR;
    }
  }
}

// bp is (ceil(nc/NR) panels) x (kc, NR); columns past nc are zero.
template <class T>
void pack_b(int64_t kc, int64_t nc, const T* b, int64_t rsb, int64_t csb, int NR, T* bp) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    const int64_t cols = std::min<int64_t>(NR, nc - j0);
    for (int64_t p = 0; p < kc; ++p) {
      const T* src = b + p * rsb + j0 * csb;
      if (csb == 1 && cols == NR) {
        for (int j = 0; j < NR; ++j) bp[j] = src[j];  // inlined: a memcpy call per row costs more
      } else {
        int64_t j = 0;
        for (; j < cols; ++j) bp[j] = src[j * csb];
        for (; j < NR; ++j) bp[j] = T(0);
      }
      bp += NR;
    }
  }
}

constexpr int64_t kShallowK = 32;
constexpr int64_t kSkinnyM = 16, kSkinnyMin = 256;  // gemm(): solve the transposed problem

// A pre-packed by gemm_pack_a: rows [arow0, arow0 + m) of a matrix with mp padded rows.
// B pre-packed by the caller (gemm_prepacked_ab): panels of (bk, NR), bp at this call's column 0.
template <class T>
struct Prepacked {
  const T* ap = nullptr;
  int64_t mp = 0, arow0 = 0;
  const T* bp = nullptr;
  int64_t bk = 0;
};

template <class T>
void gemm_serial(const GemmKernel<T>& kr, int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa,
                 int64_t csa, const T* b, int64_t rsb, int64_t csb, T* c, int64_t ldc,
                 bool accumulate, Prepacked<T> pre = {}) {
  if (k == 0) {
    if (!accumulate)
      for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
    return;
  }
  const int MR = kr.mr, NR = kr.nr;
  const int64_t MC = kr.mc, KC = kr.kc, NC = kr.nc;
  T* ap = pre.ap ? nullptr : thread_scratch<T>(Scratch::pack_a, MC * KC);
  T* bp = pre.bp ? nullptr : thread_scratch<T>(Scratch::pack_b, KC * ((NC + NR - 1) / NR * NR));
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = std::min(NC, n - jc);
    for (int64_t pc = 0; pc < k; pc += KC) {
      const int64_t kc = std::min(KC, k - pc);
      const bool acc = accumulate || pc > 0;
      // B micro-panel jr (a multiple of NR) of this block: at bpk + jr / NR * bstride.
      const T* bpk = pre.bp ? pre.bp + jc / NR * pre.bk * NR + pc * NR : bp;
      const int64_t bstride = pre.bp ? pre.bk * NR : kc * NR;
      if (!pre.bp) pack_b(kc, nc, b + pc * rsb + jc * csb, rsb, csb, NR, bp);
      for (int64_t ic = 0; ic < m; ic += MC) {
        const int64_t mc = std::min(MC, m - ic);
        const T* apk = pre.ap ? pre.ap + pc * pre.mp + (pre.arow0 + ic) * kc : ap;
        if (!pre.ap) pack_a(mc, kc, a + ic * rsa + pc * csa, rsa, csa, MR, ap);
        auto tile = [&](int64_t ir, int64_t jr) {
          kr.ukernel(kc, apk + ir * kc, bpk + jr / NR * bstride, c + (ic + ir) * ldc + jc + jr,
                     ldc, std::min<int64_t>(MR, mc - ir), std::min<int64_t>(NR, nc - jr), acc);
        };
        if (kc <= kShallowK) {
          // Shallow k (a weight gradient over a batch of 16): C traffic dominates, so sweep each
          // MR-row panel of C along its rows (MR contiguous streams) rather than column panel by
          // column panel (MC rows a ldc apart per step).
          for (int64_t ir = 0; ir < mc; ir += MR)
            for (int64_t jr = 0; jr < nc; jr += NR) tile(ir, jr);
        } else {
          for (int64_t jr = 0; jr < nc; jr += NR)  // B micro-panel stays in L1 across ir
            for (int64_t ir = 0; ir < mc; ir += MR) tile(ir, jr);
        }
      }
    }
  }
}

// Both entry points: C split over threads in whole register tiles (the larger dimension).
template <class T>
void gemm_threads(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, int64_t csa,
                  const T* ap, const T* b, int64_t rsb, int64_t csb, T* c, int64_t ldc,
                  bool accumulate, int nthreads, const T* bp = nullptr) {
  if (m <= 0 || n <= 0) return;
  const GemmKernel<T>& kr = gemm_kernel<T>();
  const int64_t mp = (m + kr.mr - 1) / kr.mr * kr.mr;
  // Split the larger dimension of C into whole register tiles, one range per thread.
  const bool split_n = n >= m;
  const int64_t tile = split_n ? kr.nr : kr.mr;
  const int64_t tiles = ((split_n ? n : m) + tile - 1) / tile;
  int nt = static_cast<int>(std::min<int64_t>(nthreads, tiles));
  if (static_cast<double>(m) * n * k < 32768.0) nt = 1;  // not worth a fork
  const int64_t extent = split_n ? n : m;
  parallel_region(nt, [&](int t, int T_) {
    int64_t t0, t1;
    static_range(tiles, t, T_, t0, t1);
    t0 *= tile;
    t1 = std::min(t1 * tile, extent);
    if (t1 <= t0) return;
    if (split_n)  // t0 is a whole number of NR panels
      gemm_serial(kr, m, t1 - t0, k, a, rsa, csa, bp ? b : b + t0 * csb, rsb, csb, c + t0, ldc,
                  accumulate, Prepacked<T>{ap, mp, 0, bp ? bp + t0 / kr.nr * k * kr.nr : bp, k});
    else
      gemm_serial(kr, t1 - t0, n, k, ap ? a : a + t0 * rsa, rsa, csa, b, rsb, csb, c + t0 * ldc,
                  ldc, accumulate, Prepacked<T>{ap, mp, t0, bp, k});
  });
}

}  // namespace

template <class T>
void gemm(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b,
          int64_t rsb, int64_t csb, T* c, int64_t ldc, bool accumulate, int nthreads) {
  if (m <= kSkinnyM && n >= kSkinnyMin && k >= kSkinnyMin) {
    // A few rows (a fully connected layer's batch) against a wide B: every packed B element
    // would serve only m rows, and the m rows fill MR-row tiles poorly. Solve Cᵀ = Bᵀ·Aᵀ
    // instead (B's columns become the long, packed-once-per-block A side, the m rows one NR
    // tile), then add the transpose in (VGG's 25088x4096 layer input gradient, batch 16).
    std::vector<T> ct(static_cast<size_t>(n * m));  // (n, m)
    gemm_threads<T>(n, m, k, b, csb, rsb, nullptr, a, csa, rsa, ct.data(), m, false, nthreads);
    for_each_item(m, nthreads, [&](int64_t i, int) {
      T* ci = c + i * ldc;
      for (int64_t j = 0; j < n; ++j) ci[j] = (accumulate ? ci[j] : T(0)) + ct[j * m + i];
    });
    return;
  }
  gemm_threads<T>(m, n, k, a, rsa, csa, nullptr, b, rsb, csb, c, ldc, accumulate, nthreads);
}

template <class T>
int64_t gemm_packed_a_size(int64_t m, int64_t k) {
  const int64_t mr = gemm_kernel<T>().mr;
  return (m + mr - 1) / mr * mr * k;
}

template <class T>
PackedALayout gemm_packed_a_layout(int64_t m, int64_t k) {
  const GemmKernel<T>& kr = gemm_kernel<T>();
  return PackedALayout{kr.mr, kr.kc, (m + kr.mr - 1) / kr.mr * kr.mr, k};
}

template <class T>
void gemm_pack_a(int64_t m, int64_t k, const T* a, int64_t rsa, int64_t csa, T* ap, int nthreads) {
  const GemmKernel<T>& kr = gemm_kernel<T>();
  const int64_t MR = kr.mr, KC = kr.kc, mp = (m + MR - 1) / MR * MR, panels = mp / MR;
  const int64_t kblocks = (k + KC - 1) / KC;
  // one item per (KC block, panel); each writes its own (kc, MR) slab
  for_each_item(kblocks * panels, nthreads, [&](int64_t it, int) {
    const int64_t pc = it / panels * KC, i0 = it % panels * MR;
    const int64_t kc = std::min(KC, k - pc);
    pack_a(std::min(MR, m - i0), kc, a + i0 * rsa + pc * csa, rsa, csa, kr.mr,
           ap + pc * mp + i0 * kc);
  });
}

template <class T>
void gemm_prepacked(int64_t m, int64_t n, int64_t k, const T* ap, const T* b, int64_t rsb,
                    int64_t csb, T* c, int64_t ldc, bool accumulate, int nthreads) {
  gemm_threads<T>(m, n, k, nullptr, 0, 0, ap, b, rsb, csb, c, ldc, accumulate, nthreads);
}

template <class T>
int gemm_panel_width() {
  return gemm_kernel<T>().nr;
}

template <class T>
void gemm_prepacked_ab(int64_t m, int64_t n, int64_t k, const T* ap, const T* bp, T* c,
                       int64_t ldc, bool accumulate, int nthreads) {
  gemm_threads<T>(m, n, k, nullptr, 0, 0, ap, nullptr, 0, 0, c, ldc, accumulate, nthreads, bp);
}

template <class T>
void gemm_packed_b(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, int64_t csa,
                   const T* bp, T* c, int64_t ldc, bool accumulate, int nthreads) {
  gemm_threads<T>(m, n, k, a, rsa, csa, nullptr, nullptr, 0, 0, c, ldc, accumulate, nthreads, bp);
}

template int64_t gemm_packed_a_size<float>(int64_t, int64_t);
template int64_t gemm_packed_a_size<double>(int64_t, int64_t);
template PackedALayout gemm_packed_a_layout<float>(int64_t, int64_t);
template PackedALayout gemm_packed_a_layout<double>(int64_t, int64_t);
template void gemm_pack_a<float>(int64_t, int64_t, const float*, int64_t, int64_t, float*, int);
template void gemm_pack_a<double>(int64_t, int64_t, const double*, int64_t, int64_t, double*, int);
template void gemm_prepacked<float>(int64_t, int64_t, int64_t, const float*, const float*,
                                    int64_t, int64_t, float*, int64_t, bool, int);
template void gemm_prepacked<double>(int64_t, int64_t, int64_t, const double*, const double*,
                                     int64_t, int64_t, double*, int64_t, bool, int);
template int gemm_panel_width<float>();
template int gemm_panel_width<double>();
template void gemm_prepacked_ab<float>(int64_t, int64_t, int64_t, const float*, const float*,
                                       float*, int64_t, bool, int);
template void gemm_prepacked_ab<double>(int64_t, int64_t, int64_t, const double*, const double*,
                                        double*, int64_t, bool, int);
template void gemm_packed_b<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t,
                                   const float*, float*, int64_t, bool, int);
template void gemm_packed_b<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t,
                                    const double*, double*, int64_t, bool, int);
template void gemm<float>(int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*,
                          int64_t, int64_t, float*, int64_t, bool, int);
template void gemm<double>(int64_t, int64_t, int64_t, const double*, int64_t, int64_t,
                           const double*, int64_t, int64_t, double*, int64_t, bool, int);

}  // namespace cnnfast
