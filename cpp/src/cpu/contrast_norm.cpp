// contrast_norm.cpp — global and local contrast normalization forward/backward. Global: one image
// per work item. Local: one (n, c) plane per item (or one image when across_channels); the
// Gaussian mean G is two normalized 1-D passes, its adjoint G^T the transposed passes. Planes are
// processed in double in per-thread scratch.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cnnfast/nn.h"
#include "cnnfast/runtime.h"
#include "cpu/parallel.h"
#include "cpu/workspace.h"

namespace cnnfast {

template <class T>
void global_contrast_norm_forward(int64_t N, int64_t M, T* y, const T* x, double s, double lambda,
                                  double eps) {
  for_each_item(N, get_num_threads(), [&](int64_t n, int) {
    const T* xi = x + n * M;
    T* yi = y + n * M;
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < M; ++i) sum += xi[i];
    const double mean = sum / double(M);
    for (int64_t i = 0; i < M; ++i) sq += (xi[i] - mean) * (xi[i] - mean);
    const double den = std::max(eps, std::sqrt(lambda + sq / double(M)));
    for (int64_t i = 0; i < M; ++i) yi[i] = T(s * (xi[i] - mean) / den);
  });
}

template <class T>
void global_contrast_norm_backward(int64_t N, int64_t M, T* dx, const T* dy, const T* x, double s,
                                   double lambda, double eps) {
  // σ > ε: dx = s/σ·(g − mean(g)) − s·Σ(g·d)/(M·σ³)·d, d = x − μ;  else dx = s/ε·(g − mean(g)).
  for_each_item(N, get_num_threads(), [&](int64_t n, int) {
    const T* xi = x + n * M;
    const T* gi = dy + n * M;
    T* di = dx + n * M;
    double sum = 0, sq = 0, gsum = 0, gd = 0;
    for (int64_t i = 0; i < M; ++i) sum += xi[i];
    const double mean = sum / double(M);
    for (int64_t i = 0; i < M; ++i) {
      const double d = xi[i] - mean;
      sq += d * d;
      gsum += gi[i];
      gd += gi[i] * d;
    }
    const double sigma = std::sqrt(lambda + sq / double(M)), gmean = gsum / double(M);
    const bool clipped = !(sigma > eps);
    const double den = clipped ? eps : sigma;
    const double b = clipped ? 0.0 : s * gd / (double(M) * sigma * sigma * sigma);
    for (int64_t i = 0; i < M; ++i) di[i] = T(s / den * (gi[i] - gmean) - b * (xi[i] - mean));
  });
}

namespace {

// One normalized 1-D Gaussian pass over `lines` lines of `len` elements (`es` apart, lines `ls`
// apart): forward out[j] = Σ_q taps[q]·in[j+q−r] / z[j]; adjoint out[j] = Σ_q taps[q]·in[j−q+r] /
// z[j−q+r]; z[j] = sum of the in-bounds taps at j.
void gauss_pass(int64_t lines, int64_t len, int64_t ls, int64_t es, const double* in, double* out,
                const double* taps, int64_t r, const double* z, bool adjoint) {
  for (int64_t l = 0; l < lines; ++l)
    for (int64_t j = 0; j < len; ++j) {
      double acc = 0;
      for (int64_t q = 0; q <= 2 * r; ++q) {
        const int64_t src = adjoint ? j - q + r : j + q - r;
        if (src < 0 || src >= len) continue;
        acc += adjoint ? taps[q] * in[l * ls + src * es] / z[src] : taps[q] * in[l * ls + src * es];
      }
      out[l * ls + j * es] = adjoint ? acc : acc / z[j];
    }
}

struct Gauss {
  int64_t H, W, r;
  const double* taps;
  std::vector<double> zh, zw;
  Gauss(int64_t H_, int64_t W_, const double* t, int64_t r_) : H(H_), W(W_), r(r_), taps(t) {
    auto norm = [&](int64_t len) {
      std::vector<double> z(len, 0.0);
      for (int64_t j = 0; j < len; ++j)
        for (int64_t q = 0; q <= 2 * r; ++q)
          if (j + q - r >= 0 && j + q - r < len) z[j] += taps[q];
      return z;
    };
    zh = norm(H);
    zw = norm(W);
  }
  // out (H, W) = G(in) or G^T(in); tmp is (H, W) scratch. G = (along H) ∘ (along W).
  void apply(const double* in, double* out, double* tmp, bool adjoint) const {
    if (!adjoint) {
      gauss_pass(H, W, W, 1, in, tmp, taps, r, zw.data(), false);
      gauss_pass(W, H, 1, W, tmp, out, taps, r, zh.data(), false);
    } else {
      gauss_pass(W, H, 1, W, in, tmp, taps, r, zh.data(), true);
      gauss_pass(H, W, W, 1, tmp, out, taps, r, zw.data(), true);
    }
  }
};

// Per work item (a plane, or an image of `planes` channels sharing one G plane): buffers of HW.
enum { kMean, kSigma, kTmp, kA, kB, kBuffers };

// Computes the shared mean plane m = G(avg_c x) and σ = sqrt(G(avg_c (x − m)²)) into buf.
template <class T>
void local_stats(const Gauss& g, int64_t planes, const T* x, double* buf) {
  const int64_t HW = g.H * g.W;
  double* a = buf + kA * HW;
  std::fill(a, a + HW, 0.0);
  for (int64_t c = 0; c < planes; ++c)
    for (int64_t i = 0; i < HW; ++i) a[i] += double(x[c * HW + i]) / double(planes);
  g.apply(a, buf + kMean * HW, buf + kTmp * HW, false);
  const double* m = buf + kMean * HW;
  std::fill(a, a + HW, 0.0);
  for (int64_t c = 0; c < planes; ++c)
    for (int64_t i = 0; i < HW; ++i) {
      const double v = x[c * HW + i] - m[i];
      a[i] += v * v / double(planes);
    }
  g.apply(a, buf + kSigma * HW, buf + kTmp * HW, false);
  double* sg = buf + kSigma * HW;
  for (int64_t i = 0; i < HW; ++i) sg[i] = std::sqrt(std::max(0.0, sg[i]));
}

}  // namespace

template <class T>
void local_contrast_norm_forward(int64_t N, int64_t C, int64_t H, int64_t W, T* y, const T* x,
                                 const double* taps, int64_t radius, bool across_channels,
                                 double eps) {
  const Gauss g(H, W, taps, radius);
  const int64_t HW = H * W, planes = across_channels ? C : 1;
  for_each_item(N * C / planes, get_num_threads(), [&](int64_t item, int) {
    double* buf = thread_scratch<double>(Scratch::col, kBuffers * HW);
    const T* xi = x + item * planes * HW;
    T* yi = y + item * planes * HW;
    local_stats(g, planes, xi, buf);
    const double *m = buf + kMean * HW, *sg = buf + kSigma * HW;
    for (int64_t c = 0; c < planes; ++c)
      for (int64_t i = 0; i < HW; ++i)
        yi[c * HW + i] = T((xi[c * HW + i] - m[i]) / std::max(eps, sg[i]));
  });
}

template <class T>
void local_contrast_norm_backward(int64_t N, int64_t C, int64_t H, int64_t W, T* dx, const T* dy,
                                  const T* x, const double* taps, int64_t radius,
                                  bool across_channels, double eps) {
  // dv = g/den + 2v·A^T(ds2),  ds2 = [σ > ε]·(−Σ_c g·v/den²)/(2σ);  dx = dv − A^T(Σ_c dv),
  // with A = G ∘ avg_c, so A^T(p) = G^T(p)/planes broadcast over the channels.
  const Gauss g(H, W, taps, radius);
  const int64_t HW = H * W, planes = across_channels ? C : 1;
  for_each_item(N * C / planes, get_num_threads(), [&](int64_t item, int) {
    double* buf = thread_scratch<double>(Scratch::col, kBuffers * HW);
    const T* xi = x + item * planes * HW;
    const T* gi = dy + item * planes * HW;
    T* di = dx + item * planes * HW;
    local_stats(g, planes, xi, buf);
    const double *m = buf + kMean * HW, *sg = buf + kSigma * HW;
    double *a = buf + kA * HW, *b = buf + kB * HW, *tmp = buf + kTmp * HW;
    std::fill(a, a + HW, 0.0);  // a = Σ_c g·v
    for (int64_t c = 0; c < planes; ++c)
      for (int64_t i = 0; i < HW; ++i) a[i] += gi[c * HW + i] * (xi[c * HW + i] - m[i]);
    for (int64_t i = 0; i < HW; ++i) {  // a = ds2
      const double den = std::max(eps, sg[i]);
      a[i] = sg[i] > eps ? -a[i] / (den * den) / (2.0 * sg[i]) : 0.0;
    }
    g.apply(a, b, tmp, true);  // b = G^T(ds2)
    std::fill(a, a + HW, 0.0);  // a = Σ_c dv, dv written to di
    for (int64_t c = 0; c < planes; ++c)
      for (int64_t i = 0; i < HW; ++i) {
        const double v = xi[c * HW + i] - m[i];
        const double dv = gi[c * HW + i] / std::max(eps, sg[i]) + 2.0 * v * b[i] / double(planes);
        di[c * HW + i] = T(dv);
        a[i] += dv;
      }
    g.apply(a, b, tmp, true);  // b = G^T(Σ_c dv)
    for (int64_t c = 0; c < planes; ++c)
      for (int64_t i = 0; i < HW; ++i) di[c * HW + i] = T(di[c * HW + i] - b[i] / double(planes));
  });
}

#define CNNFAST_INSTANTIATE(T)                                                                    \
  template void global_contrast_norm_forward<T>(int64_t, int64_t, T*, const T*, double, double,   \
                                                double);                                          \
  template void global_contrast_norm_backward<T>(int64_t, int64_t, T*, const T*, const T*, double, \
                                                 double, double);                                 \
  template void local_contrast_norm_forward<T>(int64_t, int64_t, int64_t, int64_t, T*, const T*,  \
                                               const double*, int64_t, bool, double);             \
  template void local_contrast_norm_backward<T>(int64_t, int64_t, int64_t, int64_t, T*, const T*, \
                                                const T*, const double*, int64_t, bool, double);
CNNFAST_INSTANTIATE(float)
CNNFAST_INSTANTIATE(double)
#undef CNNFAST_INSTANTIATE

}  // namespace cnnfast
