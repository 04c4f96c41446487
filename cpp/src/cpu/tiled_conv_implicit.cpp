// tiled_conv_implicit.cpp — tiled convolution (few banks) as an implicit GEMM. The conv tile
// microkernel of conv_implicit.cpp takes one row pointer per output position, so a tile can hold
// any MR positions of one bank: the positions are listed bank by bank (bank β = (bd, bh, bw) owns
// (bd + TD·u, bh + TH·v, bw + TW·q)) and each tile takes MR consecutive ones, whatever their rows.
//   forward:  y[n, k, o] = Σ_t W_β[k, t] · x_pad(n)[off[t] + in(o)]             (tile: MR pos x NR k)
//   dW:       dW_β[k, t] += Σ_n Σ_{o ∈ β} dy[n, k, o] · x_pad(n)[off[t] + in(o)] (tile: MR taps x NR k)
//   dx:       at unit stride, the forward on dy with flipped, transposed filters and banks over
//             the input positions: input position h of phase h mod T meets, through tap r, the
//             output h + pad − r·dil, whose bank is (h + pad − r·dil) mod T — fixed per phase.
//   db:       Σ of each bank's rows of the transposed dY the dW tiles read (per image, then
//             over images in order: independent of the thread count).
// Work items are (image, bank), static ranges per thread; a thread pads each image once (reads
// it in place when there is no padding).
#include "cpu/tiled_conv_implicit.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "cnnfast/checked.h"
#include "cnnfast/runtime.h"
#include "cpu/conv_banked_implicit.h"
#include "cpu/conv_implicit.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"
#include "cpu/tiled_conv_gemm.h"
#include "cpu/workspace.h"

namespace cnnfast::cpu {
namespace {

// The output positions bank by bank: out[j] its flat output offset, in[j] the offset of its
// window origin in the padded image; bank β holds j in [start[β], start[β + 1]).
struct BankOrder {
  std::vector<int64_t> out, in, start;
  std::vector<int64_t> rows;  // rows[bh]: the output rows oh with oh mod TH = bh
  int64_t most = 0;           // positions of the largest bank
};

BankOrder bank_order(const TiledConvParams& p, const PaddedVolume& v) {
  const Conv3dParams& c = p.conv;
  BankOrder o;
  o.out.reserve(static_cast<size_t>(c.out_volume()));
  o.in.reserve(static_cast<size_t>(c.out_volume()));
  for (int64_t bd = 0; bd < p.TD; ++bd)
    for (int64_t bh = 0; bh < p.TH; ++bh)
      for (int64_t bw = 0; bw < p.TW; ++bw) {
        o.start.push_back(static_cast<int64_t>(o.out.size()));
        for (int64_t od = bd; od < c.OD; od += p.TD)
          for (int64_t oh = bh; oh < c.OH; oh += p.TH)
            for (int64_t ow = bw; ow < c.OW; ow += p.TW) {
              o.out.push_back((od * c.OH + oh) * c.OW + ow);
              o.in.push_back((od * c.stride_d * v.Hp + oh * c.stride_h) * v.Wp + ow * c.stride_w);
            }
      }
  o.start.push_back(static_cast<int64_t>(o.out.size()));
  for (int64_t bh = 0; bh < p.TH; ++bh) o.rows.push_back((c.OH - bh + p.TH - 1) / p.TH);
  for (size_t b = 0; b + 1 < o.start.size(); ++b)
    o.most = std::max(o.most, o.start[b + 1] - o.start[b]);
  return o;
}

// With T_w = 2 on an even output width: output row (od, oh) holds, at ow = 2q + bw, position
// u0 + q of bank b0 + bw.
struct PairRow {
  int64_t b0, u0;
};
PairRow pair_row(const TiledConvParams& p, const BankOrder& o, int64_t od, int64_t oh) {
  return {((od % p.TD) * p.TH + oh % p.TH) * 2,
          (od / p.TD * o.rows[oh % p.TH] + oh / p.TH) * (p.conv.OW / 2)};
}

// Runs f(thread, item, first) over static ranges of items = (image, bank), on at most `nt`
// threads; first: the item opens the thread's range or an image (its data is not yet staged).
template <class F>
void over_items(int64_t items, int64_t banks, int nt, F&& f) {
  parallel_region(nt, [&](int t, int n) {
    int64_t i0, i1;
    static_range(items, t, n, i0, i1);
    for (int64_t it = i0; it < i1; ++it) f(t, it, it == i0 || it % banks == 0);
  });
}

int threads_for(int64_t items) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), items)));
}

// Scratch for all banks of an image's output, at most (the bench's 4 banks of 16 channels on
// 26x26 outputs take 44 KiB).
constexpr int64_t kWholeImageBanksBytes = int64_t(1) << 20;

int mod(int64_t a, int64_t m) { return static_cast<int>(((a % m) + m) % m); }

}  // namespace

// One bank's filters are one group's (groups 1): the conv forward's L2 rule decides the fit.
bool tiled_implicit_pays(const TiledConvParams& p) {
  return p.conv.out_volume() >= 4 * kImplicitMaxRows * p.banks() &&
         implicit_forward_fits(p.conv);
}

bool tiled_implicit_data_applies(const TiledConvParams& p) {
  return implicit_data_applies(p.conv);
}

template <class T>
void tiled_conv_forward_implicit(const TiledConvParams& p, T* y, const T* x, const T* w,
                                 const T* b) {
  const Conv3dParams& c = p.conv;
  const ImplicitTileKernel<T>& kr = implicit_tile_kernel<T>(c.K);  // run_banked_implicit's
  const int64_t NR = kr.nr;
  const int64_t K = c.K, np = c.C * c.taps(), KB = (K + NR - 1) / NR, B = p.banks();
  const int64_t out = c.out_volume();
  const PaddedVolume v(c);
  const BankOrder o = bank_order(p, v);
  const std::vector<int64_t> off = tap_offsets(c, v);  // off[t], t = (c, a, r, s)
  // wp (B, KB, np, NR): wp[((β*KB + kb)*np + t)*NR + j] = W_β(kb*NR + j, t), 0 past K.
  std::vector<T> wp(static_cast<size_t>(checked_mul(checked_mul(B * KB, np), NR)), T(0));
  for (int64_t bk = 0; bk < B * K; ++bk) {
    const int64_t bank = bk / K, k = bk % K;
    for (int64_t t = 0; t < np; ++t)
      wp[((bank * KB + k / NR) * np + t) * NR + k % NR] = w[bk * np + t];
  }
  // T_w = 2 on an even output width (the bench's 2x2 banks): a thread holding whole images
  // runs all their banks, then writes y row by row, the two banks of a bank row interleaved by
  // the kernel's vector transpose (the bank-by-bank scalar scatter was 17 % of this forward).
  const int64_t MR = kr.mr, most = (o.most + MR - 1) / MR * MR;
  const bool pairs = p.TW == 2 && c.OW % 2 == 0 && !(b && p.bias_per_location) &&
                     c.N >= get_num_threads() &&
                     B * KB * most * NR * int64_t(sizeof(T)) <= kWholeImageBanksBytes;
  const std::vector<T> no_bias(static_cast<size_t>(KB * NR), T(0));
  run_banked_implicit(
      c, v, x, B, pairs ? B : 1, K,
      [&](int64_t bank) {
        const int64_t j0 = o.start[bank];
        return ImplicitBank{o.in.data() + j0, o.start[bank + 1] - j0, off.data(), np};
      },
      [&](int64_t bank) { return static_cast<const T*>(wp.data() + bank * KB * np * NR); },
      [&](int64_t n, int64_t bank0, const T* yb, int64_t ld) {
        if (!pairs) {  // one bank: its positions, wherever they are in y
          const int64_t j0 = o.start[bank0], gs = o.start[bank0 + 1] - j0;
          const int64_t* at = o.out.data() + j0;  // the bank's output offsets
          for (int64_t k = 0; k < K; ++k) {
            T* yk = y + (n * K + k) * out;
            const T* src = yb + (k / NR * ld) * NR + k % NR;  // src[u * NR]: position u
            if (b && p.bias_per_location) {
              for (int64_t u = 0; u < gs; ++u) yk[at[u]] = src[u * NR] + b[k * out + at[u]];
            } else {
              const T bias = b ? b[bank0 * K + k] : T(0);
              for (int64_t u = 0; u < gs; ++u) yk[at[u]] = src[u * NR] + bias;
            }
          }
          return;
        }
        const int64_t cols = c.OW / 2, bstride = KB * ld * NR;
        for (int64_t od = 0; od < c.OD; ++od)
          for (int64_t oh = 0; oh < c.OH; ++oh) {
            const PairRow r = pair_row(p, o, od, oh);
            for (int64_t kb = 0; kb < KB; ++kb) {
              const int64_t k0 = kb * NR, nk = std::min(NR, K - k0);
              const T* ya = yb + r.b0 * bstride + (kb * ld + r.u0) * NR;
              kr.interleave2(nk, cols, ya, ya + bstride, NR,
                             b ? b + r.b0 * K + k0 : no_bias.data(),
                             b ? b + (r.b0 + 1) * K + k0 : no_bias.data(),
                             y + (n * K + k0) * out + (od * c.OH + oh) * c.OW, out);
            }
          }
      });
}

template <class T>
void tiled_conv_backward_data_implicit(const TiledConvParams& p, T* dx, const T* dy, const T* w) {
  const Conv3dParams& c = p.conv;
  if (!tiled_implicit_data_applies(p))
    throw std::logic_error("tiled implicit backward-data needs unit stride");
  const TiledConvParams q{implicit_data_params(c), p.TD, p.TH, p.TW, false};
  // wt (TD, TH, TW, C, K, taps): phase φ's filter for input channel ci, output channel k, tap
  // (a', r', s') is W_β[k, ci, flipped tap] with β the bank that tap meets from phase φ.
  const int64_t B = p.banks(), taps = c.taps(), wsize = c.C * c.K * taps;
  T* wt = thread_scratch<T>(Scratch::weights2, checked_mul(B, wsize));
  for_each_item(B * c.C, get_num_threads(), [&](int64_t item, int) {
    const int64_t phase = item / c.C, ci = item % c.C;
    const int64_t fd = phase / (p.TH * p.TW), fh = (phase / p.TW) % p.TH, fw = phase % p.TW;
    for (int64_t a = 0; a < c.KD; ++a)
      for (int64_t r = 0; r < c.KH; ++r)
        for (int64_t s = 0; s < c.KW; ++s) {  // the tap's bank, then every output channel
          const int64_t bank =
              (mod(fd + c.pad_front - a * c.dil_d, p.TD) * p.TH +
               mod(fh + c.pad_top - r * c.dil_h, p.TH)) * p.TW +
              mod(fw + c.pad_left - s * c.dil_w, p.TW);
          const int64_t flipped = ((c.KD - 1 - a) * c.KH + c.KH - 1 - r) * c.KW + c.KW - 1 - s;
          const T* src = w + (bank * c.K * c.C + ci) * taps + (a * c.KH + r) * c.KW + s;
          T* dst = wt + (phase * c.C + ci) * c.K * taps + flipped;
          for (int64_t k = 0; k < c.K; ++k) dst[k * taps] = src[k * c.C * taps];
        }
  });
  tiled_conv_forward_implicit(q, dx, dy, static_cast<const T*>(wt), static_cast<const T*>(nullptr));
}

template <class T>
void tiled_conv_backward_weight_implicit(const TiledConvParams& p, T* dw, T* db, const T* dy,
                                         const T* x) {
  if (db && (!dw || p.bias_per_location)) {  // no dW tiles to share dY with, or a bias per position
    tiled_conv_bias_grad(p, db, dy);
    db = nullptr;
  }
  if (!dw) return;
  const ImplicitTileKernel<T>& kr = implicit_tile_kernel<T>();
  const int64_t MR = kr.mr, NR = kr.nr;
  if (MR > kImplicitMaxRows) throw std::logic_error("implicit conv tile has too many rows");
  const Conv3dParams& c = p.conv;
  const int64_t K = c.K, np = c.C * c.taps(), KB = (K + NR - 1) / NR, TB = (np + MR - 1) / MR;
  const int64_t B = p.banks(), out = c.out_volume(), image = c.C * c.in_volume(), ldy = KB * NR;
  const int64_t tile = MR * NR, acc_size = checked_mul(checked_mul(B * KB, TB), tile);
  const PaddedVolume v(c);
  const BankOrder o = bank_order(p, v);
  const std::vector<int64_t> toff = tap_offsets(c, v);
  const int64_t items = c.N * B;
  const int nthr = threads_for(items);
  // The weight tiles read only real positions' windows: without padding, the image in place.
  const bool in_place = conv3d_unpadded(c);
  // T_w = 2 on an even output width: each output row of dY splits into its two banks' rows by
  // the kernel's vector deinterleave + transpose (the per-element gather was 10 % of the backward).
  const bool pairs = p.TW == 2 && c.OW % 2 == 0;
  // acc[thread] is (B, KB, TB, MR, NR): tile (β, kb, tb) holds dW_β for taps tb*MR.. x channels kb*NR..
  std::vector<T> acc(static_cast<size_t>(checked_mul(nthr, acc_size)), T(0));
  // The bias: each item's dY rows summed in row order into its own slot, the slots added in
  // image order at the end, so db does not depend on how the items fall to threads.
  std::vector<T> bias_sums(db ? static_cast<size_t>(checked_mul(items, ldy)) : 0);  // (N, B, ldy)
  over_items(items, B, nthr, [&](int th, int64_t it, bool first) {
    const int64_t n = it / B, bank = it % B;
    T* xp = in_place ? nullptr : thread_scratch<T>(Scratch::col, v.size);  // (C, Dp, Hp, Wp)
    T* dyt = thread_scratch<T>(Scratch::aux, checked_mul(out, ldy));      // (positions, KB*NR)
    if (first) {
      if (!in_place) pad_volume(c, v, x + n * image, xp);
      const T* dyn = dy + n * K * out;  // (K, out)
      if (pairs) {
        for (int64_t od = 0; od < c.OD; ++od)
          for (int64_t oh = 0; oh < c.OH; ++oh) {
            const PairRow r = pair_row(p, o, od, oh);
            kr.deinterleave2(K, c.OW / 2, dyn + (od * c.OH + oh) * c.OW, out,
                             dyt + (o.start[r.b0] + r.u0) * ldy,
                             dyt + (o.start[r.b0 + 1] + r.u0) * ldy, ldy);
          }
        if (K < ldy)
          for (int64_t j = 0; j < out; ++j) std::fill(dyt + j * ldy + K, dyt + (j + 1) * ldy, T(0));
      } else {
        for (int64_t j = 0; j < out; ++j) {
          T* row = dyt + j * ldy;
          for (int64_t k = 0; k < K; ++k) row[k] = dyn[k * out + o.out[j]];
          for (int64_t k = K; k < ldy; ++k) row[k] = T(0);
        }
      }
    }
    const T* xn = in_place ? x + n * image : xp;
    T* mine = acc.data() + th * acc_size + bank * KB * TB * tile;
    const int64_t end = o.start[bank + 1];
    if (db) {  // the bank's dY rows, summed while they are in cache
      T* sum = bias_sums.data() + it * ldy;
      std::fill(sum, sum + ldy, T(0));
      for (int64_t j = o.start[bank]; j < end; ++j)
        for (int64_t k = 0; k < ldy; ++k) sum[k] += dyt[j * ldy + k];
    }
    for (int64_t j0 = o.start[bank]; j0 < end; j0 += 256) {  // dY block of a channel block: L1
      const int64_t un = std::min<int64_t>(256, end - j0);
      for (int64_t kb = 0; kb < KB; ++kb)
        for (int64_t tb = 0; tb < TB; ++tb) {
          const T* xs[kImplicitMaxRows];  // row i: tap tb*MR + i (past np: tap 0, ignored)
          for (int64_t i = 0; i < MR; ++i) xs[i] = xn + toff[tb * MR + i < np ? tb * MR + i : 0];
          kr.tile(un, xs, o.in.data() + j0, dyt + j0 * ldy + kb * NR, ldy,
                  mine + (kb * TB + tb) * tile, true);
        }
    }
  });
  add_weight_tiles(B, K, np, MR, NR, acc.data(), acc_size, nthr, dw);  // dW (B, K, np)
  if (db)  // db (B, K): the items' sums in image order
    for (int64_t bk = 0; bk < B * K; ++bk)
      for (int64_t n = 0; n < c.N; ++n) db[bk] += bias_sums[(n * B + bk / K) * ldy + bk % K];
}

#define CNNFAST_INSTANTIATE(T)                                                                  \
  template void tiled_conv_forward_implicit<T>(const TiledConvParams&, T*, const T*, const T*,  \
                                               const T*);                                       \
  template void tiled_conv_backward_data_implicit<T>(const TiledConvParams&, T*, const T*,      \
                                                     const T*);                                 \
  template void tiled_conv_backward_weight_implicit<T>(const TiledConvParams&, T*, T*, const T*, \
                                                       const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
