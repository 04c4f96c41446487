// conv_banked_implicit.h — the implicit-GEMM conv tile run over banks of output positions, each
// bank with its own window origins, tap offsets and packed filters: tiled convolution's kernel
// banks (tiled_conv_implicit.cpp) and a strided convolution's backward-data phases
// (conv_implicit_phases.cpp). A tile takes MR consecutive positions of one bank, whatever their
// rows. Work items are (image, group of banks) in static ranges per thread; a thread pads each
// image once; a bank's tiles land in a scratch block (KB, most, NR), one contiguous (MR, NR)
// block per tile, which the caller's emit() writes into the output (storing a tile's NR channel
// rows straight into the output, element by element, stalls on cache misses).
#pragma once
#include <algorithm>
#include <stdexcept>

#include "cnnfast/checked.h"
#include "cnnfast/runtime.h"
#include "cpu/conv_implicit.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"
#include "cpu/workspace.h"

namespace cnnfast::cpu {

struct ImplicitBank {
  const int64_t* in;   // (count) window origin of each position in the padded image
  int64_t count;       // positions
  const int64_t* off;  // (np) offset of each tap (channel, a, r, s) from a window origin
  int64_t np;
};

// geometry: the input images x (N, C, D, H, W) and their padding (geometry.pad_*), v its padded
// volume. For each image n and bank β = bank_of(β): yb_β <- Σ_t x_pad(n)[in[u] + off[t]] ·
// filters_of(β)[kb, t, j] (filters (KB, np, NR), K output channels in KB blocks of NR), where
// yb_β[(kb·most + u)·NR + j] is position u, channel kb·NR + j. Banks run in groups of `group`
// consecutive ones (group divides banks); emit(n, β0, yb, most) then gets the group's blocks,
// bank β0 + i at yb + i·KB·most·NR (a group of all banks: an image's output row by row).
template <class T, class BankOf, class FiltersOf, class Emit>
void run_banked_implicit(const Conv3dParams& geometry, const PaddedVolume& v, const T* x,
                         int64_t banks, int64_t group, int64_t K, BankOf&& bank_of,
                         FiltersOf&& filters_of, Emit&& emit) {
  const ImplicitTileKernel<T>& kr = implicit_tile_kernel<T>(K);  // callers pack for this tile
  const int64_t MR = kr.mr, NR = kr.nr, KB = (K + NR - 1) / NR;
  if (MR * NR > kImplicitMaxTile || MR > kImplicitMaxRows)
    throw std::logic_error("implicit conv tile larger than its buffer");
  if (group < 1 || banks % group != 0) throw std::logic_error("bank group must divide banks");
  const int64_t image = geometry.C * geometry.in_volume(), groups = banks / group;
  const int64_t items = geometry.N * groups;
  int64_t most = 0;  // positions of the largest bank, rounded up to whole tiles
  for (int64_t b = 0; b < banks; ++b) most = std::max(most, bank_of(b).count);
  most = (most + MR - 1) / MR * MR;
  const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), items)));
  // Without padding the tiles read the images in place: a tile's rows past its bank repeat the
  // bank's last position, so no read goes past the window of a real position.
  const Conv3dParams& g = geometry;
  const bool in_place = g.Cg() == g.C && conv3d_unpadded(g);
  parallel_region(nt, [&](int t, int nth) {
    int64_t i0, i1;
    static_range(items, t, nth, i0, i1);
    T* xp = in_place ? nullptr : thread_scratch<T>(Scratch::col, v.size);  // (C, Dp, Hp, Wp)
    const int64_t block = KB * most * NR;                                    // one bank's tiles
    T* yb = thread_scratch<T>(Scratch::aux, checked_mul(group, block));     // (group, KB, most, NR)
    const T* xn = nullptr;  // image n, padded
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t n = it / groups, b0 = it % groups * group;
      if (in_place) {
        xn = x + n * image;
      } else if (it == i0 || b0 == 0) {
        pad_volume(geometry, v, x + n * image, xp);
        xn = xp;
      }
      for (int64_t g = 0; g < group; ++g) {
        const ImplicitBank bk = bank_of(b0 + g);
        const T* wp = filters_of(b0 + g);
        T* ybg = yb + g * block;
        for (int64_t u0 = 0; u0 < bk.count; u0 += MR) {
          const int64_t mr = std::min(MR, bk.count - u0);
          const T* xs[kImplicitMaxRows];  // row i: position u0 + i (past the bank: its last again)
          for (int64_t i = 0; i < MR; ++i) xs[i] = xn + bk.in[u0 + std::min(i, mr - 1)];
          for (int64_t kb = 0; kb < KB; ++kb)
            kr.tile(bk.np, xs, bk.off, wp + kb * bk.np * NR, NR, ybg + (kb * most + u0) * NR,
                    false);
        }
      }
      emit(n, b0, static_cast<const T*>(yb), most);
    }
  });
}

}  // namespace cnnfast::cpu
