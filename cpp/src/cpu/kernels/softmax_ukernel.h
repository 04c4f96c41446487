// softmax_ukernel.h — the softmax microkernel contract shared by the softmax__<isa>.cpp files in
// this folder (their loops are softmax_impl.h, built with each file's flags; the exponentials are
// the file's exp_run, inlined). No threads, no allocation; cpu/softmax.cpp splits the work.
// Two shapes:
//   tiles: P <= kSoftmaxTile positions × C classes, value (c, p) of the input at x[c·ldx + p]
//     (per-pixel classes: the C values of a position are ldx apart). The loops read a tile once
//     into a contiguous (C, P) scratch z, work there, and write the output once: x and y rows
//     ldx apart alias in the caches when ldx is a power of two (128x128 planes: 64 KiB), so a
//     second pass over them would come from memory.
//       gather_max: z[c·P + p] = x[c·ldx + p]; mx[p] = max_c x (mx null: the copy only).
//                   std::max(m, NaN) = m: a NaN reaches the sum instead, which makes it NaN.
//       exp_sum:    sum[p] = Σ_c e^{x[c·ldx + p] − a[p]}, every exponential added in double
//                   (float runs lost up to 16 half-ulps of 1 where one class dominates: 9e-7
//                   in log-softmax's −5e-5); e non-null: e[c·P + p] = the exponential (e may
//                   be x, with ldx = P).
//       log_sums:   ls[p] = ln sum[p] for p < n, sum[p] in [1, C] or NaN (float's tables: a
//                   series exact to 2e-12, vectorized; double's: std::log)
//       affine_out: y[c·ldy + p] = z[c·P + p]·s[p] − t[p]·w[c]  (t null: no t term; w null: 1)
//       shift_out:  y[c·ldy + p] = (z[c·P + p] − a[p]) − b[p]
//       grad_out:   the backward from g (the output's gradient) and y (the output), both (C, P)
//                   contiguous: dx[c·ldx + p] = y·(g − Σ_c g·y) (softmax) or g − e^y·Σ_c g
//                   (log-softmax), sums and results in double
//   rows: one position's C contiguous classes (class scores, (N, C)).
//       row_max:     max_c x[c] (NaN as above)
//       row_exp_sum: Σ_c e^{x[c] − a}, every exponential added in double; e non-null: e[c] =
//                    the exponential
//       row_affine:  y[c] = y[c]·s − t·w[c] in place (t = 0: no second term; w null: 1)
//       row_shift:   y[c] = (x[c] − a) − b
//       row_grad:    grad_out for one row
// float's exponential is exp_poly below in every ISA file; double calls std::exp.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace cnnfast {

constexpr int64_t kSoftmaxTile = 256;  // positions per tile, at most

template <class T>
struct SoftmaxKernel {
  const char* name;
  void (*gather_max)(int64_t C, int64_t P, const T* x, int64_t ldx, T* z, T* mx);
  void (*exp_sum)(int64_t C, int64_t P, const T* x, int64_t ldx, const T* a, double* sum, T* e);
  void (*log_sums)(int64_t n, double* ls, const double* sum);
  void (*affine_out)(int64_t C, int64_t P, T* y, int64_t ldy, const T* z, const T* s,
                     const T* t, const T* w);
  void (*shift_out)(int64_t C, int64_t P, T* y, int64_t ldy, const T* z, const T* a,
                    const T* b);
  void (*grad_out)(int64_t C, int64_t P, T* dx, int64_t ldx, const T* g, const T* y, bool log);
  T (*row_max)(int64_t C, const T* x);
  double (*row_exp_sum)(int64_t C, const T* x, T a, T* e);
  void (*row_affine)(int64_t C, T* y, T s, T t, const T* w);
  void (*row_shift)(int64_t C, T* y, const T* x, T a, T b);
  void (*row_grad)(int64_t C, T* dx, const T* g, const T* y, bool log);
};

// The float exp: e^x = 2^n · e^r, n = round(x·log2 e), r = x − n·ln 2 (ln 2 split in two so r is
// exact), e^r by Cephes' degree-7 polynomial on |r| <= ln2/2 (max relative error 2e-7 against
// std::exp). Arguments above kExpHi give +inf (2^n stays a normal float), below kExpLo 0 (e^x
// under FLT_MIN flushes, −inf gives 0); NaN stays NaN. The ISA files vectorize exactly this.
constexpr float kExpHi = 88.0f, kExpLo = -87.33654475f;  // kExpLo = ln FLT_MIN
constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kExpP[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                            4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

inline float exp_poly(float x) {
  if (!(x >= kExpLo)) return x != x ? x : 0.0f;
  if (x > kExpHi) return HUGE_VALF;
  const float n = std::nearbyint(x * kLog2e);
  const float r = std::fma(-n, kLn2Lo, std::fma(-n, kLn2Hi, x));
  float p = kExpP[0];
  for (int i = 1; i < 6; ++i) p = std::fma(p, r, kExpP[i]);
  p = std::fma(p, r * r, r + 1.0f);
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n, n in [-126, 127]
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// Per-ISA kernels (defined in the softmax__<isa>.cpp files of this folder).
extern const SoftmaxKernel<float> softmax_f32__scalar;
extern const SoftmaxKernel<double> softmax_f64__scalar;
extern const SoftmaxKernel<float> softmax_f32__avx2;
extern const SoftmaxKernel<double> softmax_f64__avx2;
extern const SoftmaxKernel<float> softmax_f32__avx512;
extern const SoftmaxKernel<double> softmax_f64__avx512;

}  // namespace cnnfast
