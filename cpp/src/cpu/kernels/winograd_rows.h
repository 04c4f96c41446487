// winograd_rows.h — Winograd F(m x m, 3x3) transform microkernels for one row of tiles, m = 2 or 4
// (input tiles of α = m + 2). The padded input plane is stored as m column-phase planes:
// plane q (at x + q·ps) holds xpad[h][m·j + q] at row h, column j (row stride ld), so tile (row ti,
// column tj) reads rows m·ti .. m·ti + α − 1 of the planes at j = tj and tj + 1 — unit stride over
// tj, which the compiler vectorizes with each file's ISA flags.
//   input_row:  v[ξ*ldv + tj] = (Bᵀ d B)[ξ] for tiles tj < tw of the tile row starting at x, ξ < α²
//   output_row: o[a*ldo + m·tj + e] = (Aᵀ M A)[a][e] with M[ξ*ldm + tj], for tj < tw, a, e < m
//   adjoint_output_row: mm[ξ*ldm + tj] = (A g Aᵀ)[ξ] for the m x m tile g[a][e] = o[e·ps + a·ld +
//               tj] (an output-gradient plane stored as m column-phase planes), tj < tw — the
//               transpose of output_row, for the weight gradient
// No threads, no allocation.
#pragma once
#include <cstdint>

namespace cnnfast {

template <class T>
struct WinogradRowKernels {
  const char* name;
  int m;  // output tile side
  void (*input_row)(const T* x, int64_t ps, int64_t ld, int64_t tw, T* v, int64_t ldv);
  void (*output_row)(const T* mm, int64_t ldm, int64_t tw, T* o, int64_t ldo);
  void (*adjoint_output_row)(const T* o, int64_t ps, int64_t ld, int64_t tw, T* mm, int64_t ldm);
};

extern const WinogradRowKernels<float> winograd_f2x3_rows_f32__scalar;
extern const WinogradRowKernels<double> winograd_f2x3_rows_f64__scalar;
extern const WinogradRowKernels<float> winograd_f2x3_rows_f32__avx2;
extern const WinogradRowKernels<double> winograd_f2x3_rows_f64__avx2;
extern const WinogradRowKernels<float> winograd_f2x3_rows_f32__avx512;
extern const WinogradRowKernels<double> winograd_f2x3_rows_f64__avx512;
extern const WinogradRowKernels<float> winograd_f4x3_rows_f32__scalar;
extern const WinogradRowKernels<double> winograd_f4x3_rows_f64__scalar;
extern const WinogradRowKernels<float> winograd_f4x3_rows_f32__avx2;
extern const WinogradRowKernels<double> winograd_f4x3_rows_f64__avx2;
extern const WinogradRowKernels<float> winograd_f4x3_rows_f32__avx512;
extern const WinogradRowKernels<double> winograd_f4x3_rows_f64__avx512;

}  // namespace cnnfast
