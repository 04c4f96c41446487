// bench_main.cpp — C++ benchmark of the cnnfast core (no Python): for the conv2d
// configurations and SGEMM 2048^3, validate against the naive twin (algo ref, first image only),
// then time forward / backward-data / backward-weight (median of reps after a warm-up) and print
// GFLOP/s and % of the FP32 peak measured by the core's FMA loop on the same run. GFLOP/s count
// the direct convolution's multiply-adds, so Winograd rows ('auto' picks it on 3x3 layers) can
// pass 100 % of peak. Exit 1 when a result misses its tolerance; a case the algo cannot take is
// skipped with the reason.
//   usage: cnnfast_bench [threads] [reps] [algo: auto|gemm|implicit|direct|winograd] [case]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cnnfast/conv.h"
#include "cnnfast/matmul.h"
#include "cnnfast/peak.h"
#include "cnnfast/runtime.h"

using namespace cnnfast;

namespace {

struct Case {
  const char* name;
  int64_t N, C, H, W, K, R, S, stride, pad, dil, groups;
};

const Case kCases[] = {
    {"lenet_conv1", 64, 1, 28, 28, 6, 5, 5, 1, 0, 1, 1},
    {"lenet_conv2", 64, 6, 14, 14, 16, 5, 5, 1, 0, 1, 1},
    {"alexnet_conv1", 16, 3, 224, 224, 64, 11, 11, 4, 2, 1, 1},
    {"resnet_conv1", 16, 3, 224, 224, 64, 7, 7, 2, 3, 1, 1},
    {"vgg_conv3_2", 8, 256, 56, 56, 256, 3, 3, 1, 1, 1, 1},
    {"resnet_3x3", 32, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1},
    {"resnet_1x1", 32, 256, 56, 56, 64, 1, 1, 1, 0, 1, 1},
    {"strided_3x3_s2", 32, 64, 56, 56, 128, 3, 3, 2, 1, 1, 1},
    {"dilated_3x3_d4", 8, 64, 64, 64, 64, 3, 3, 1, 4, 4, 1},
    {"depthwise_3x3", 32, 128, 56, 56, 128, 3, 3, 1, 1, 1, 128},
};

std::vector<float> randn(size_t n, std::mt19937& g) {
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& e : v) e = d(g);
  return v;
}

template <class F>
double median_ms(F&& f, int reps) {
  f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double rel_err(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

void row(const char* op, const char* cfg, double ms, double flops, double peak, double err) {
  const double gf = flops / ms * 1e-6;
  std::printf("%-18s %-15s %10.2f %9.1f %6.1f   %.1e\n", op, cfg, ms, gf, 100 * gf / peak, err);
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage =
      "usage: cnnfast_bench [threads >= 1] [reps >= 1] [algo: auto|gemm|implicit|direct|winograd]"
      " [case name]\n";
  if (argc > 1 && (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help")) {
    std::printf("%s", usage);
    return 0;
  }
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
  const std::string only = argc > 4 ? argv[4] : "";
  ConvAlgo algo = ConvAlgo::automatic;
  try {
    algo = conv_algo_from_name(argc > 3 ? argv[3] : "auto");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s%s\n", usage, e.what());
    return 2;
  }
  if (threads < 1 || reps < 1) {
    std::fprintf(stderr, "%s", usage);
    return 2;
  }
  const double tol = algo == ConvAlgo::automatic || algo == ConvAlgo::winograd ? 1e-4 : 1e-5;
  bool all_valid = true;
  set_num_threads(threads);
  const double peak = measure_peak_gflops(threads, 0.5);
  std::printf("cnnfast %s isa=%s threads=%d reps=%d; measured FP32 peak %.1f GFLOP/s\n", version(),
              isa_name(isa_active()), threads, reps, peak);
  std::printf("%-18s %-15s %10s %9s %6s   %s\n", "op", "config", "ms", "GFLOP/s", "%peak",
              "rel_err (vs naive twin, image 0)");
  std::mt19937 gen(1234);
  for (const Case& c : kCases) {
    if (!only.empty() && only != c.name) continue;
    try {
      const Conv2dParams p = conv2d_params(c.N, c.C, c.H, c.W, c.K, c.C / c.groups, c.R, c.S,
                                           c.stride, c.stride, c.pad, c.pad, c.pad, c.pad, c.dil,
                                           c.dil, c.groups);
      const size_t nx = p.N * p.C * p.H * p.W, ny = p.N * p.K * p.P * p.Q;
      const size_t nw = p.K * p.Cg() * p.R * p.S;
      auto x = randn(nx, gen), w = randn(nw, gen), b = randn(p.K, gen), dy = randn(ny, gen);
      std::vector<float> y(ny), dx(nx), dw(nw), db(p.K);
      const double flops = 2.0 * p.N * p.K * p.Cg() * p.R * p.S * p.P * p.Q;
      // Validation on image 0 against the naive twin.
      Conv2dParams p1 = p;
      p1.N = 1;
      std::vector<float> r1(p.K * p.P * p.Q), rx(p.C * p.H * p.W), rw(nw, 0.f), ow(nw, 0.f);
      conv2d_forward<float>(p, y.data(), x.data(), w.data(), b.data(), algo);
      conv2d_forward<float>(p1, r1.data(), x.data(), w.data(), b.data(), ConvAlgo::ref);
      const double e_f = rel_err(y.data(), r1.data(), r1.size());
      conv2d_backward_data<float>(p, dx.data(), dy.data(), w.data(), algo);
      conv2d_backward_data<float>(p1, rx.data(), dy.data(), w.data(), ConvAlgo::ref);
      const double e_d = rel_err(dx.data(), rx.data(), rx.size());
      conv2d_backward_weight<float>(p1, ow.data(), nullptr, dy.data(), x.data(), algo);
      conv2d_backward_weight<float>(p1, rw.data(), nullptr, dy.data(), x.data(), ConvAlgo::ref);
      const double e_w = rel_err(ow.data(), rw.data(), nw);
      row("conv2d_fwd", c.name, median_ms([&] {
            conv2d_forward<float>(p, y.data(), x.data(), w.data(), b.data(), algo);
          }, reps), flops, peak, e_f);
      row("conv2d_bwd_data", c.name, median_ms([&] {
            conv2d_backward_data<float>(p, dx.data(), dy.data(), w.data(), algo);
          }, reps), flops, peak, e_d);
      row("conv2d_bwd_weight", c.name, median_ms([&] {
            conv2d_backward_weight<float>(p, dw.data(), db.data(), dy.data(), x.data(), algo);
          }, reps), flops, peak, e_w);
      if (!(std::max({e_f, e_d, e_w}) <= tol)) {
        std::printf("%-18s %-15s FAIL: rel_err above %.0e\n", "conv2d", c.name, tol);
        all_valid = false;
      }
    } catch (const std::exception& e) {
      std::printf("%-18s %-15s skipped: %s\n", "conv2d", c.name, e.what());
    }
  }
  if (!only.empty() && only != "sgemm_2048") return all_valid ? 0 : 1;
  const int64_t n = 2048;
  auto a = randn(n * n, gen), bb = randn(n * n, gen);
  std::vector<float> cc(n * n);
  matmul_forward<float>(n, n, n, cc.data(), a.data(), bb.data());
  double err = 0;  // spot-check 64 entries against a double dot product
  for (int t = 0; t < 64; ++t) {
    const int64_t i = (t * 131) % n, j = (t * 977) % n;
    double s = 0;
    for (int64_t k = 0; k < n; ++k) s += double(a[i * n + k]) * bb[k * n + j];
    err = std::max(err, std::abs(s - cc[i * n + j]) / std::sqrt(double(n)));
  }
  row("matmul", "sgemm_2048", median_ms([&] {
        matmul_forward<float>(n, n, n, cc.data(), a.data(), bb.data());
      }, reps), 2.0 * n * n * n, peak, err);
  return all_valid && err <= 1e-3 ? 0 : 1;
}
