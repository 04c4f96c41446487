// eltwise_ukernel.h — the elementwise microkernel contract shared by every ISA file in this folder.
// One contiguous run of n elements: no threads, no allocation; the loops in cpu/ split the work.
//   leaky_relu_fwd: y[i] = x[i] > 0 ? x[i] : slope·x[i]   (slope = 0: relu, 0 > x ? 0 : x — no
//                   0·(−inf) = NaN; NaN propagates through every kernel, tanh/sigmoid too)
//   leaky_relu_bwd: dx[i] = x[i] > 0 ? dy[i] : slope·dy[i]   (slope = 0: exactly 0)
//   tanh_fwd:       y[i] = tanh(x[i]);  sigmoid_fwd: y[i] = 1 / (1 + e^−x[i]) = (1 + tanh(x/2)) / 2
//   exp_shifted:    y[i] = e^{(x[i] − a[i·step]) − b[i·step]}, step 1 (a shift per element) or
//                   0 (one each); a or b null: 0 — softmax's exponents
// float uses one rational approximation of tanh in every ISA file (Eigen's 13/6 minimax form,
// |x| clamped to 7.905: max relative error 4e-7) and one exp (exp_poly below); double calls
// std::tanh / std::exp.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace cnnfast {

template <class T>
struct EltwiseKernel {
  const char* name;
  void (*leaky_relu_fwd)(int64_t n, T* y, const T* x, T slope);
  void (*leaky_relu_bwd)(int64_t n, T* dx, const T* dy, const T* x, T slope);
  void (*tanh_fwd)(int64_t n, T* y, const T* x);
  void (*sigmoid_fwd)(int64_t n, T* y, const T* x);
  void (*exp_shifted)(int64_t n, T* y, const T* x, const T* a, const T* b, int64_t step);
};

// The float tanh approximation's coefficients: tanh(x) ≈ x·P(x²)/Q(x²) on |x| <= kTanhClamp.
constexpr float kTanhClamp = 7.90531110763549805f;
constexpr float kTanhP[7] = {4.89352455891786e-03f, 6.37261928875436e-04f, 1.48572235717979e-05f,
                             5.12229709037114e-08f, -8.60467152213735e-11f, 2.00018790482477e-13f,
                             -2.76076847742355e-16f};
constexpr float kTanhQ[4] = {4.89352518554385e-03f, 2.26843463243900e-03f, 1.18534705686654e-04f,
                             1.19825839466702e-06f};

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

// The double versions every ISA table shares (double is the accuracy path, not the fast one).
void tanh_f64_std(int64_t n, double* y, const double* x);
void sigmoid_f64_std(int64_t n, double* y, const double* x);
void exp_shifted_f64_std(int64_t n, double* y, const double* x, const double* a, const double* b,
                         int64_t step);

// Per-ISA kernels (defined in the eltwise_*__<isa>.cpp files of this folder).
extern const EltwiseKernel<float> eltwise_f32__scalar;
extern const EltwiseKernel<double> eltwise_f64__scalar;
extern const EltwiseKernel<float> eltwise_f32__avx2;
extern const EltwiseKernel<double> eltwise_f64__avx2;
extern const EltwiseKernel<float> eltwise_f32__avx512;
extern const EltwiseKernel<double> eltwise_f64__avx512;

}  // namespace cnnfast
