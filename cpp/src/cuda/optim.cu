// optim.cu — in-place SGD and Adam/AdamW updates on CUDA: nn.h's rules (PyTorch's), one thread
// per element, arithmetic in double as on the CPU.
#include <cmath>

#include "cuda/runtime.cuh"

namespace cnnfast::cuda {
namespace {

CNNFAST_HD inline void sgd_one(int64_t i, float* p, const float* g, float* buf, double lr,
                               double momentum, double dampening, double weight_decay,
                               bool nesterov, bool first) {
  double d = double(g[i]);
  if (weight_decay != 0) d += weight_decay * double(p[i]);  // 0 · inf would give NaN
  if (momentum != 0) {
    const double m = first ? d : momentum * double(buf[i]) + (1 - dampening) * d;
    buf[i] = float(m);
    d = nesterov ? d + momentum * m : m;
  }
  p[i] = float(double(p[i]) - lr * d);
}

struct AdamArgs {
  double step_size, bc2_sqrt, lr, beta1, beta2, eps, weight_decay;
  bool decoupled, amsgrad;
};

AdamArgs adam_args(int64_t t, double lr, double beta1, double beta2, double eps, double wd,
                   bool decoupled, bool amsgrad) {
  const double bc1 = 1 - std::pow(beta1, double(t)), bc2 = 1 - std::pow(beta2, double(t));
  return {lr / bc1, std::sqrt(bc2), lr, beta1, beta2, eps, wd, decoupled, amsgrad};
}

CNNFAST_HD inline void adam_one(int64_t i, float* p, const float* g, float* m, float* v,
                                float* max_v, const AdamArgs& a) {
  double pi = p[i], gi = g[i];
  if (a.decoupled)
    pi *= 1 - a.lr * a.weight_decay;
  else if (a.weight_decay != 0)  // 0 · inf would give NaN
    gi += a.weight_decay * pi;
  const double mi = a.beta1 * double(m[i]) + (1 - a.beta1) * gi;
  const double vi = a.beta2 * double(v[i]) + (1 - a.beta2) * gi * gi;
  m[i] = float(mi);
  v[i] = float(vi);
  double vd = vi;
  if (a.amsgrad) {
    vd = fmax(double(max_v[i]), vi);
    max_v[i] = float(vd);
  }
  p[i] = float(pi - a.step_size * mi / (sqrt(vd) / a.bc2_sqrt + a.eps));
}

__global__ void sgd_kernel(int64_t n, float* p, const float* g, float* buf, double lr,
                           double momentum, double dampening, double weight_decay, bool nesterov,
                           bool first) {
  CNNFAST_GRID_STRIDE(i, n) {
    sgd_one(i, p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first);
  }
}

__global__ void adam_kernel(int64_t n, float* p, const float* g, float* m, float* v, float* max_v,
                            AdamArgs a) {
  CNNFAST_GRID_STRIDE(i, n) { adam_one(i, p, g, m, v, max_v, a); }
}

}  // namespace

void sgd_step(int64_t n, float* p, const float* g, float* buf, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov, bool first) {
  if (n <= 0) return;
  sgd_kernel<<<blocks_for(n), kThreads>>>(n, p, g, buf, lr, momentum, dampening, weight_decay,
                                          nesterov, first);
  CNNFAST_CUDA_CHECK_LAUNCH("sgd_kernel");
}

void adam_step(int64_t n, float* p, const float* g, float* m, float* v, float* max_v, int64_t t,
               double lr, double beta1, double beta2, double eps, double weight_decay,
               bool decoupled, bool amsgrad) {
  if (n <= 0) return;
  adam_kernel<<<blocks_for(n), kThreads>>>(
      n, p, g, m, v, max_v,
      adam_args(t, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad));
  CNNFAST_CUDA_CHECK_LAUNCH("adam_kernel");
}

namespace emulate {
void sgd_step(int64_t n, float* p, const float* g, float* buf, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov, bool first) {
  for (int64_t i = 0; i < n; ++i)
    sgd_one(i, p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first);
}
void adam_step(int64_t n, float* p, const float* g, float* m, float* v, float* max_v, int64_t t,
               double lr, double beta1, double beta2, double eps, double weight_decay,
               bool decoupled, bool amsgrad) {
  const AdamArgs a = adam_args(t, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad);
  for (int64_t i = 0; i < n; ++i) adam_one(i, p, g, m, v, max_v, a);
}
}  // namespace emulate

}  // namespace cnnfast::cuda
