// conv2d_direct_rows_impl.h — the one source of the direct row microkernels (contract in
// conv2d_direct_rows.h). Each *__<isa>.cpp includes it inside its own anonymous namespace, so the
// compiler vectorizes the unit-stride loops with that file's ISA flags; the loops are written so
// that every j iteration is independent (no reductions), which keeps results identical across ISAs
// up to FMA contraction.
#pragma once
// (included after <cstdint> by conv2d_direct_rows.h; no includes here: this file is pasted into
// an anonymous namespace)

template <class T>
void direct_fwd(T* __restrict y, const T* __restrict x, int64_t ldr, const T* __restrict w,
                int64_t R, int64_t S, int64_t Q, int64_t sw, int64_t dw) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t s = 0; s < S; ++s) {
      const T wv = w[r * S + s];
      const T* __restrict src = x + r * ldr + s * dw;
      if (sw == 1) {
        for (int64_t j = 0; j < Q; ++j) y[j] += wv * src[j];
      } else {
        for (int64_t j = 0; j < Q; ++j) y[j] += wv * src[j * sw];
      }
    }
}

template <class T>
void direct_bwd_data(T* __restrict x, int64_t ldr, const T* __restrict dy, const T* __restrict w,
                     int64_t R, int64_t S, int64_t Q, int64_t sw, int64_t dw) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t s = 0; s < S; ++s) {
      const T wv = w[r * S + s];
      T* __restrict dst = x + r * ldr + s * dw;
      if (sw == 1) {
        for (int64_t j = 0; j < Q; ++j) dst[j] += wv * dy[j];
      } else {
        for (int64_t j = 0; j < Q; ++j) dst[j * sw] += wv * dy[j];
      }
    }
}

template <class T>
void direct_bwd_weight(T* __restrict acc, const T* __restrict dy, const T* __restrict x,
                       int64_t ldr, int64_t R, int64_t S, int64_t Q, int64_t sw, int64_t dw) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t s = 0; s < S; ++s) {
      T* __restrict a = acc + (r * S + s) * Q;
      const T* __restrict src = x + r * ldr + s * dw;
      if (sw == 1) {
        for (int64_t j = 0; j < Q; ++j) a[j] += dy[j] * src[j];
      } else {
        for (int64_t j = 0; j < Q; ++j) a[j] += dy[j] * src[j * sw];
      }
    }
}
