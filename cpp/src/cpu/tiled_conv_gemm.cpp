// tiled_conv_gemm.cpp — tiled convolution by banks. Bank β = (bd, bh, bw) owns the output
// positions (bd + TD·u, bh + TH·v, bw + TW·q): a strided grid, i.e. a convolution with stride
// T·stride and origin β·stride − pad. Its columns, for every image of a range, are gathered by
// vol2col side by side, so one GEMM per (bank, chunk) serves the whole batch:
//   forward:      Ybuf[K, cols]   = W_β[K, C·taps] · col[C·taps, cols], scattered into y (+ bias)
//   backward dx:  dcol            = W_βᵀ · gather(dy), col2vol into dx
//   backward dw:  dW_β[K, C·taps] += gather(dy) · colᵀ
// T = (1, 1, 1) is a plain convolution (one bank, the full grid); T = output size is the locally
// connected layer (one position per image and bank: a GEMM batched over the images).
// Threads take static ranges of images (private dW partials, added in order). The banks' geometry
// is in tiled_conv_banks.h.
#include "cpu/tiled_conv_gemm.h"

#include <algorithm>
#include <vector>

#include "cnnfast/checked.h"
#include "cnnfast/runtime.h"
#include "cpu/dispatch.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "cpu/tiled_conv_banks.h"
#include "cpu/transpose.h"
#include "cpu/vol2col.h"
#include "cpu/workspace.h"

namespace cnnfast::cpu {
namespace {

constexpr int64_t kColBudgetElems = int64_t(1) << 19;  // per-thread workspace (elements)
constexpr int kDxSlices = 4;  // locally connected dx: fixed bank ranges, one dxt copy each

// dst (cols, rows) = src (rows, cols)ᵀ, rows split over threads.
template <class T>
void transpose(int64_t rows, int64_t cols, const T* src, T* dst) {
  parallel_region(get_num_threads(), [&](int t, int nt) {
    int64_t r0, r1;
    static_range(rows, t, nt, r0, r1);
    transpose_blocked(r1 - r0, cols, src + r0 * cols, cols, dst + r0, rows);
  });
}

// col (C*taps, ldcol = l) <- the chunk's columns: from the batch-last input xt when given (one
// position per image), else vol2col per image segment of x (N, C, D, H, W).
template <class T>
void lower_columns(const TiledConvParams& p, const Bank& b, int64_t n0, int64_t c0, int64_t l,
                   const T* x, const T* xt, T* col) {
  const Conv3dParams& c = p.conv;
  const int64_t image = c.C * c.in_volume();
  if (xt) return patch2col(c, b.grid.origin, xt + n0 + c0, c.N, int64_t(1), l, col, l);
  for_each_image_segment(b, n0, c0, l, [&](int64_t t, int64_t n, int64_t j, int64_t seg) {
    vol2col(c, b.grid, x + n * image, j, seg, col + t, l);
  });
}

// The adjoint of lower_columns: dx (or the batch-last dxt) += the columns' contributions.
template <class T>
void lower_columns_adjoint(const TiledConvParams& p, const Bank& b, int64_t n0, int64_t c0,
                           int64_t l, const T* dcol, T* dx, T* dxt) {
  const Conv3dParams& c = p.conv;
  const int64_t image = c.C * c.in_volume();
  if (dxt) return col2patch_add(c, b.grid.origin, dcol, l, l, c.N, int64_t(1), dxt + n0 + c0);
  for_each_image_segment(b, n0, c0, l, [&](int64_t t, int64_t n, int64_t j, int64_t seg) {
    col2vol_add(c, b.grid, dcol + t, j, seg, l, dx + n * image);
  });
}

struct Plan {
  int64_t rows, out, in, len;
  explicit Plan(const TiledConvParams& p, int64_t nr)
      : rows(p.conv.C * p.conv.taps()), out(p.conv.out_volume()), in(p.conv.in_volume()) {
    const int64_t per_col = rows + p.conv.K;  // col + Ybuf columns
    len = std::max(kColBudgetElems / per_col / nr * nr, nr);
  }
};

// Runs body(thread, n0, n1, inner_threads) over static image ranges: one per thread when N >=
// threads, else the whole batch [0, N) with the threads inside the GEMMs.
template <class F>
void over_image_ranges(int64_t N, F&& body) {
  const int nt = get_num_threads();
  if (nt > 1 && N >= nt) {
    parallel_region(nt, [&](int t, int n) {
      int64_t n0, n1;
      static_range(N, t, n, n0, n1);
      body(t, n0, n1, 1);
    });
  } else {
    body(0, 0, N, nt);
  }
}

// For each bank (of [b0, b1), default all) and chunk of the columns of images [n0, n1):
// f(bank, c0, l, col, ybuf).
template <class T, class F>
void for_each_bank_chunk(const TiledConvParams& p, const Plan& pl, int64_t n0, int64_t n1, F&& f,
                         int64_t b0 = 0, int64_t b1 = -1) {
  T* col = thread_scratch<T>(Scratch::col, (pl.rows + p.conv.K) * pl.len);
  T* ybuf = col + pl.rows * pl.len;
  for (int64_t bi = b0; bi < (b1 < 0 ? p.banks() : b1); ++bi) {
    const Bank b = make_bank(p, bi);
    const int64_t cols = (n1 - n0) * b.grid.size();
    for (int64_t c0 = 0; c0 < cols; c0 += pl.len) f(b, c0, std::min(pl.len, cols - c0), col, ybuf);
  }
}

// ybuf (K, l) <- dy at the chunk's positions. A bank with one position per image (locally
// connected) has column t = image n0 + c0 + t at one output offset: a strided copy (the general
// walk divides per element).
template <class T>
void gather_dy(const TiledConvParams& p, const Bank& b, int64_t n0, int64_t c0, int64_t l,
               const T* dy, T* ybuf) {
  const int64_t K = p.conv.K, out = p.conv.out_volume();
  if (b.grid.size() == 1) {
    const T* src = dy + (n0 + c0) * K * out + first_position(p, b);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t t = 0; t < l; ++t) ybuf[k * l + t] = src[(t * K + k) * out];
    return;
  }
  for_each_image_segment(b, n0, c0, l, [&](int64_t t0, int64_t n, int64_t j, int64_t seg) {
    for (int64_t k = 0; k < K; ++k) {
      const T* src = dy + (n * K + k) * out;
      T* dst = ybuf + k * l + t0;
      for_each_position(p, b, j, seg, [&](int64_t t, int64_t o) { dst[t] = src[o]; });
    }
  });
}

// The adjoint of gather_dy plus the bias: y at the chunk's positions <- ybuf (K, l) + b.
template <class T>
void scatter_y(const TiledConvParams& p, const Bank& b, int64_t n0, int64_t c0, int64_t l,
               const T* ybuf, const T* bias, T* y) {
  const int64_t K = p.conv.K, out = p.conv.out_volume();
  auto bias_at = [&](int64_t k, int64_t o) {
    return !bias ? T(0) : p.bias_per_location ? bias[k * out + o] : bias[b.index * K + k];
  };
  if (b.grid.size() == 1) {
    const int64_t o = first_position(p, b);
    T* dst = y + (n0 + c0) * K * out + o;
    for (int64_t k = 0; k < K; ++k) {
      const T bk = bias_at(k, o);
      for (int64_t t = 0; t < l; ++t) dst[(t * K + k) * out] = ybuf[k * l + t] + bk;
    }
    return;
  }
  for_each_image_segment(b, n0, c0, l, [&](int64_t t0, int64_t n, int64_t j, int64_t seg) {
    for (int64_t k = 0; k < K; ++k) {
      T* dst = y + (n * K + k) * out;
      const T* src = ybuf + k * l + t0;
      for_each_position(p, b, j, seg, [&](int64_t t, int64_t o) { dst[o] = src[t] + bias_at(k, o); });
    }
  });
}

// xt (C*D*H*W, N): the batch-last copy of x when every bank has one position per image, else null.
template <class T>
T* batch_last_scratch(const TiledConvParams& p) {
  if (!one_position_per_bank(p)) return nullptr;
  return thread_scratch<T>(Scratch::weights, checked_mul(p.conv.N * p.conv.C, p.conv.in_volume()));
}

// Locally connected backward-data: the banks split into kDxSlices fixed ranges, each summed (all
// images, each bank's weights read once) into its own batch-last dxt; threads take slices; dx is
// the slices' sum in slice order, transposed back to (N, C, D, H, W) in the same pass — the same
// bits at any thread count.
template <class T>
void local_backward_data_by_slices(const TiledConvParams& p, const Plan& pl, T* dx, const T* dy,
                                   const T* w) {
  const Conv3dParams& c = p.conv;
  const int64_t size = checked_mul(c.N * c.C, pl.in), elems = c.C * pl.in;
  const int S = static_cast<int>(std::min<int64_t>(kDxSlices, std::max<int64_t>(1, p.banks())));
  T* all = thread_scratch<T>(Scratch::weights, checked_mul(size, S));  // S x (C*D*H*W, N)
  parallel_region(std::min(get_num_threads(), S), [&](int t, int n) {
    int64_t s0, s1;
    static_range(S, t, n, s0, s1);
    for (int64_t sl = s0; sl < s1; ++sl) {
      T* mine = all + sl * size;
      std::fill(mine, mine + size, T(0));
      int64_t b0, b1;
      static_range(p.banks(), static_cast<int>(sl), S, b0, b1);
      for_each_bank_chunk<T>(p, pl, 0, c.N, [&](const Bank& bk, int64_t c0, int64_t l, T* dcol,
                                                T* ybuf) {
        gather_dy(p, bk, 0, c0, l, dy, ybuf);
        const T* wb = w + bk.index * c.K * pl.rows;  // (K, C*taps), read transposed
        gemm(pl.rows, l, c.K, wb, 1, pl.rows, ybuf, l, 1, dcol, l, false, 1);
        lower_columns_adjoint(p, bk, 0, c0, l, dcol, dx, mine);
      }, b0, b1);
    }
  });
  parallel_region(get_num_threads(), [&](int t, int n) {
    int64_t e0, e1;
    static_range(elems, t, n, e0, e1);
    for (int64_t e = e0; e < e1; ++e)
      for (int64_t i = 0; i < c.N; ++i) {
        T s = T(0);
        for (int u = 0; u < S; ++u) s += all[u * size + e * c.N + i];
        dx[i * elems + e] = s;
      }
  });
}

}  // namespace

template <class T>
void tiled_conv_forward_gemm(const TiledConvParams& p, T* y, const T* x, const T* w, const T* b) {
  const Conv3dParams& c = p.conv;
  const Plan pl(p, gemm_kernel<T>().nr);
  T* xt = batch_last_scratch<T>(p);
  if (xt) transpose(c.N, c.C * pl.in, x, xt);
  const T* xtp = xt;
  auto run = [&](int64_t n0, int64_t n1, int inner, int64_t b0, int64_t b1) {
    for_each_bank_chunk<T>(p, pl, n0, n1, [&](const Bank& bk, int64_t c0, int64_t l, T* col,
                                              T* ybuf) {
      lower_columns(p, bk, n0, c0, l, x, xtp, col);
      const T* wb = w + bk.index * c.K * pl.rows;  // (K, C*taps)
      gemm(c.K, l, pl.rows, wb, pl.rows, 1, col, l, 1, ybuf, l, false, inner);
      scatter_y(p, bk, n0, c0, l, static_cast<const T*>(ybuf), b, y);
    }, b0, b1);
  };
  // Locally connected: threads take ranges of banks, so each bank's weights (read once, from
  // memory) serve every image; otherwise ranges of images.
  if (xt && get_num_threads() > 1) {
    parallel_region(get_num_threads(), [&](int t, int n) {
      int64_t b0, b1;
      static_range(p.banks(), t, n, b0, b1);
      run(0, c.N, 1, b0, b1);
    });
  } else {
    over_image_ranges(c.N, [&](int, int64_t n0, int64_t n1, int inner) { run(n0, n1, inner, 0, -1); });
  }
}

template <class T>
void tiled_conv_backward_data_gemm(const TiledConvParams& p, T* dx, const T* dy, const T* w) {
  const Conv3dParams& c = p.conv;
  const Plan pl(p, gemm_kernel<T>().nr);
  if (one_position_per_bank(p)) return local_backward_data_by_slices(p, pl, dx, dy, w);
  T* dxtp = batch_last_scratch<T>(p);
  if (dxtp) std::fill(dxtp, dxtp + c.N * c.C * pl.in, T(0));
  over_image_ranges(c.N, [&](int, int64_t n0, int64_t n1, int inner) {
    if (!dxtp) std::fill(dx + n0 * c.C * pl.in, dx + n1 * c.C * pl.in, T(0));
    for_each_bank_chunk<T>(p, pl, n0, n1, [&](const Bank& bk, int64_t c0, int64_t l, T* dcol,
                                              T* ybuf) {
      gather_dy(p, bk, n0, c0, l, dy, ybuf);
      const T* wb = w + bk.index * c.K * pl.rows;  // (K, C*taps), read transposed
      gemm(pl.rows, l, c.K, wb, 1, pl.rows, ybuf, l, 1, dcol, l, false, inner);
      lower_columns_adjoint(p, bk, n0, c0, l, dcol, dx, dxtp);
    });
  });
  if (dxtp) transpose(c.C * pl.in, c.N, dxtp, dx);
}

template <class T>
void tiled_conv_backward_weight_gemm(const TiledConvParams& p, T* dw, T* db, const T* dy,
                                     const T* x) {
  const Conv3dParams& c = p.conv;
  const Plan pl(p, gemm_kernel<T>().nr);
  const int nt = get_num_threads();
  const int64_t wsize = p.banks() * c.K * pl.rows;
  // Locally connected: threads take ranges of banks (disjoint slices of dW, every image each);
  // otherwise ranges of images with a private dW each, added in thread order.
  const bool by_bank = nt > 1 && one_position_per_bank(p);
  const bool split = !by_bank && nt > 1 && c.N >= nt;
  std::vector<T> partial(split && dw ? static_cast<size_t>(nt) * wsize : 0, T(0));
  T* xt = dw ? batch_last_scratch<T>(p) : nullptr;
  if (xt) transpose(c.N, c.C * pl.in, x, xt);
  const T* xtp = xt;
  auto accumulate = [&](T* dwt, int64_t n0, int64_t n1, int inner, int64_t b0, int64_t b1) {
    for_each_bank_chunk<T>(p, pl, n0, n1, [&](const Bank& bk, int64_t c0, int64_t l, T* col,
                                              T* ybuf) {
      gather_dy(p, bk, n0, c0, l, dy, ybuf);
      lower_columns(p, bk, n0, c0, l, x, xtp, col);
      T* dwb = dwt + bk.index * c.K * pl.rows;  // (K, C*taps)
      gemm(c.K, pl.rows, l, ybuf, l, 1, col, 1, l, dwb, pl.rows, true, inner);
    }, b0, b1);
  };
  if (dw && by_bank) {
    parallel_region(nt, [&](int t, int n) {
      int64_t b0, b1;
      static_range(p.banks(), t, n, b0, b1);
      accumulate(dw, 0, c.N, 1, b0, b1);
    });
  } else if (dw) {
    over_image_ranges(c.N, [&](int t, int64_t n0, int64_t n1, int inner) {
      accumulate(split ? partial.data() + t * wsize : dw, n0, n1, inner, 0, -1);
    });
  }
  if (split && dw)
    parallel_region(nt, [&](int t, int n) {
      int64_t e0, e1;
      static_range(wsize, t, n, e0, e1);
      for (int64_t e = e0; e < e1; ++e) {
        T s = dw[e];
        for (int u = 0; u < nt; ++u) s += partial[u * wsize + e];
        dw[e] = s;
      }
    });
  if (db) tiled_conv_bias_grad(p, db, dy);
}

// db[bank, k] (tiled) or db[k, position] (locally connected) += Σ dy, one channel per item. Tiled:
// the rows of each bank row (od mod TD, oh mod TH) are summed into one column row (contiguous,
// vectorized adds), whose columns fold into the banks (ow mod TW) once at the end — db's K
// channels share cache lines, so a write per dy row bounced those lines between the threads.
template <class T>
void tiled_conv_bias_grad(const TiledConvParams& p, T* db, const T* dy) {
  const Conv3dParams& c = p.conv;
  const int64_t K = c.K, out = c.out_volume(), OW = c.OW;
  const int64_t td = std::min(p.TD, c.OD), th = std::min(p.TH, c.OH);
  for_each_item(K, get_num_threads(), [&](int64_t k, int) {
    if (p.bias_per_location) {
      T* dbk = db + k * out;  // (out,)
      for (int64_t n = 0; n < c.N; ++n) {
        const T* dyk = dy + (n * K + k) * out;
        for (int64_t o = 0; o < out; ++o) dbk[o] += dyk[o];
      }
      return;
    }
    std::vector<T> cols(static_cast<size_t>(td * th * OW), T(0));  // (td, th, OW)
    for (int64_t n = 0; n < c.N; ++n) {
      const T* dyk = dy + (n * K + k) * out;  // (OD, OH, OW)
      for (int64_t od = 0; od < c.OD; ++od)
        for (int64_t oh = 0; oh < c.OH; ++oh) {
          const T* row = dyk + (od * c.OH + oh) * OW;
          T* col = cols.data() + ((od % p.TD) * th + oh % p.TH) * OW;
          for (int64_t ow = 0; ow < OW; ++ow) col[ow] += row[ow];
        }
    }
    for (int64_t bd = 0; bd < td; ++bd)
      for (int64_t bh = 0; bh < th; ++bh) {
        const T* col = cols.data() + (bd * th + bh) * OW;
        T* dbr = db + ((bd * p.TH + bh) * p.TW) * K + k;  // bank (bd, bh, 0)
        for (int64_t ow = 0; ow < OW; ++ow) dbr[(ow % p.TW) * K] += col[ow];
      }
  });
}

#define CNNFAST_INSTANTIATE(T)                                                                    \
  template void tiled_conv_forward_gemm<T>(const TiledConvParams&, T*, const T*, const T*,        \
                                           const T*);                                             \
  template void tiled_conv_backward_data_gemm<T>(const TiledConvParams&, T*, const T*, const T*); \
  template void tiled_conv_backward_weight_gemm<T>(const TiledConvParams&, T*, T*, const T*,      \
                                                   const T*);                                     \
  template void tiled_conv_bias_grad<T>(const TiledConvParams&, T*, const T*);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast::cpu
