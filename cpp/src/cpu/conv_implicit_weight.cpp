// conv_implicit_weight.cpp — convolution weight gradient (2-D and 3-D) as an implicit GEMM:
//   dW_g[k, t] += Σ_n Σ_u dY_g(n)[k, u] · x_pad(n)[toff[t] + poff[u]]   t = (c, a, r, s), u = out pos
// The same tile microkernel as the forward, with tiles of MR taps x NR output channels: its rows
// read the padded image at tap offset + position offset (no im2col), its B operand is dY of the
// image transposed to (positions, channels). Positions run in chunks, each transposed just before
// its tiles (and prefetched one chunk ahead), so the dY block of one channel block stays in L1
// while every tap tile passes over it. Each thread sums its static
// share of (image, group) items into private tile accumulators; the shares are added in thread
// order, so the result depends only on the thread count.
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "cnnfast/runtime.h"
#include "cpu/channel_sums.h"
#include "cpu/conv_implicit.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"
#include "cpu/workspace.h"

namespace cnnfast::cpu {
namespace {
constexpr int64_t kPositionChunk = 256;  // dY block (chunk, NR) of one channel block: 16 KiB
}  // namespace

// With fewer (image, group) items than threads the threads share one image's positions, each
// summing into its own copy of every tile, swept once per position chunk: that pays while the
// copy stays in L2 (one image, 2 threads, split / GEMM ms: 64 ch 3x3 on 56x56 1.28 / 2.11, 96 ch
// on 28x28 1.42 / 1.57, 16 ch 5x5 on 14x14 0.06 / 0.10; 128 ch (590 KiB of sums) on 20x20 1.52 /
// 1.44, on 14x14 0.93 / 0.72; 256 ch on 28x28 11.4 / 10.0).
constexpr int64_t kSplitTileSums = int64_t(1) << 17;  // elements: 512 KiB of floats

bool implicit_weight_fits(const Conv3dParams& p, int nthreads) {
  return p.N * p.groups >= nthreads || p.K * p.Cg() * p.taps() <= kSplitTileSums;
}

template <class T>
void conv_backward_weight_implicit(const Conv3dParams& p, T* dw, T* db, const T* dy,
                                   const T* x) {
  const ImplicitTileKernel<T>& kr = implicit_tile_kernel<T>(p.Kg());
  const int64_t MR = kr.mr, NR = kr.nr;
  if (MR > kImplicitMaxRows) throw std::logic_error("implicit conv tile has too many rows");
  const int64_t Cg = p.Cg(), Kg = p.Kg(), G = p.groups, np = Cg * p.taps(), PQ = p.out_volume();
  const int64_t KB = (Kg + NR - 1) / NR, TB = (np + MR - 1) / MR, ldy = KB * NR;
  const int64_t tile = MR * NR, acc_size = checked_mul(checked_mul(G * KB, TB), tile);
  const PaddedVolume pl(p);
  const std::vector<int64_t> toff = tap_offsets(p, pl);
  std::vector<int64_t> poff(static_cast<size_t>(PQ));  // image offset of output position u
  for (int64_t od = 0, u = 0; od < p.OD; ++od)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow)
        poff[u++] = (od * p.stride_d * pl.Hp + oh * p.stride_h) * pl.Wp + ow * p.stride_w;

  // Work is split evenly over the (image, group, output position) triples, contiguous ranges per
  // thread: one image's positions are shared when there are fewer (image, group) items than
  // threads (one image, 16->16 9x9 on 56x56, 2 threads: 1.56 ms on one thread's item, 0.89 split).
  const int64_t units = checked_mul(p.N * G, PQ);
  const int nthr = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), units)));
  // acc[thread] is (G, KB, TB, MR, NR): tile (g, kb, tb) holds dW for taps tb*MR.. x channels kb*NR..
  if (dw) {
    std::vector<T> acc(static_cast<size_t>(checked_mul(nthr, acc_size)), T(0));
    parallel_region(nthr, [&](int th, int nth) {
      int64_t i0, i1;
      static_range(units, th, nth, i0, i1);
      if (i0 >= i1) return;  // nothing (also: no output positions, PQ 0)
      T* mine = acc.data() + th * acc_size;
      // The tiles read only real positions' windows: without padding, the image in place.
      const bool in_place = conv3d_unpadded(p);
      T* xp = in_place ? nullptr : thread_scratch<T>(Scratch::col, pl.size);  // (Cg, Dp, Hp, Wp)
      T* dyt = thread_scratch<T>(Scratch::aux, checked_mul(kPositionChunk, ldy));  // (chunk, KB*NR)
      for (int64_t u = 0; u < kPositionChunk; ++u)  // channels past Kg: zero, never written
        std::fill(dyt + u * ldy + Kg, dyt + (u + 1) * ldy, T(0));
      for (int64_t it = i0 / PQ; it * PQ < i1; ++it) {  // the (image, group) items in the range
        const int64_t n = it / G, g = it % G;
        const int64_t u_begin = std::max(i0, it * PQ) - it * PQ;
        const int64_t u_end = std::min(i1, (it + 1) * PQ) - it * PQ;
        const T* xg = x + (n * p.C + g * Cg) * p.in_volume();  // (Cg, D, H, W)
        if (!in_place) pad_volume(p, pl, xg, xp);
        const T* xn = in_place ? xg : xp;
        const T* dyg = dy + (n * p.K + g * Kg) * PQ;  // (Kg, PQ)
        for (int64_t u0 = u_begin; u0 < u_end; u0 += kPositionChunk) {
          const int64_t un = std::min(kPositionChunk, u_end - u0);
          kr.transpose(Kg, un, dyg + u0, PQ, dyt, ldy);  // this chunk's dY, while it is used
          // The next chunk's dY (Kg rows of its lines) is prefetched a share per tile call: its
          // rows are too many streams for the hardware prefetcher (the transpose stalled on them).
          const int64_t next_un = std::min(kPositionChunk, u_end - u0 - un);
          const int64_t row_lines = (next_un * int64_t(sizeof(T)) + 63) / 64;
          const int64_t lines = Kg * row_lines, share = (lines + KB * TB - 1) / (KB * TB);
          const char* next = reinterpret_cast<const char*>(dyg + u0 + un);
          int64_t line = 0;
          for (int64_t kb = 0; kb < KB; ++kb)
            for (int64_t tb = 0; tb < TB; ++tb) {
              for (const int64_t end = std::min(lines, line + share); line < end; ++line)
                __builtin_prefetch(next + (line / row_lines * PQ) * int64_t(sizeof(T)) +
                                       line % row_lines * 64, 0, 2);
              const T* xs[kImplicitMaxRows];  // row i: tap tb*MR + i (past np: tap 0, ignored)
              for (int64_t i = 0; i < MR; ++i) {
                const int64_t t = tb * MR + i;
                xs[i] = xn + toff[t < np ? t : 0];
              }
              kr.tile(un, xs, poff.data() + u0, dyt + kb * NR, ldy,
                      mine + ((g * KB + kb) * TB + tb) * tile, true);
            }
        }
      }
    });
    add_weight_tiles(G, Kg, np, MR, NR, acc.data(), acc_size, nthr, dw);  // dW (K, CgRS)
  }
  if (db) accumulate_channel_sums(p.N, p.K, PQ, db, dy);
}

template void conv_backward_weight_implicit<float>(const Conv3dParams&, float*, float*,
                                                   const float*, const float*);
template void conv_backward_weight_implicit<double>(const Conv3dParams&, double*, double*,
                                                    const double*, const double*);

}  // namespace cnnfast::cpu
