// winograd_f2x3_rows.h — Winograd F(2x2, 3x3) transform microkernels for one row of tiles.
// The padded input plane is stored deinterleaved: E[h][m] = xpad[h][2m], O[h][m] = xpad[h][2m+1]
// (row stride ld), so tile (row ti, column tj) reads E/O rows 2ti..2ti+3 at tj and tj+1 — unit
// stride over tj, which the compiler vectorizes with each file's ISA flags.
//   input_row:  v[ξ*ldv + tj] = (Bᵀ d B)[ξ] for tiles tj < tw of the tile row starting at E, O
//   output_row: o0[2tj + e], o1[2tj + e] = (Aᵀ m A)[0|1][e] with m[ξ*ldm + tj], for tj < tw
// No threads, no allocation.
#pragma once
#include <cstdint>

namespace cnnfast {

template <class T>
struct WinogradRowKernels {
  const char* name;
  void (*input_row)(const T* E, const T* O, int64_t ld, int64_t tw, T* v, int64_t ldv);
  void (*output_row)(const T* m, int64_t ldm, int64_t tw, T* o0, T* o1);
};

extern const WinogradRowKernels<float> winograd_f2x3_rows_f32__scalar;
extern const WinogradRowKernels<double> winograd_f2x3_rows_f64__scalar;
extern const WinogradRowKernels<float> winograd_f2x3_rows_f32__avx2;
extern const WinogradRowKernels<double> winograd_f2x3_rows_f64__avx2;
extern const WinogradRowKernels<float> winograd_f2x3_rows_f32__avx512;
extern const WinogradRowKernels<double> winograd_f2x3_rows_f64__avx512;

}  // namespace cnnfast
