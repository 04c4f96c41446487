// batchnorm.cu — batch normalization forward (train / eval) and backward on CUDA over x (N, C, S),
// nn.h's contract: one block per channel, sums in double (two passes for the variance, as the
// CPU), running statistics updated with the unbiased variance; dgamma / dbeta accumulate.
#include "cuda/runtime.cuh"

namespace cnnfast::cuda {
namespace {

constexpr int BT = 256;  // threads per channel block

__global__ void __launch_bounds__(BT)
    batch_norm_forward_kernel(int64_t N, int64_t C, int64_t S, float* y, float* save_mean,
                              float* save_invstd, const float* x, const float* gamma,
                              const float* beta, float* running_mean, float* running_var,
                              bool training, double momentum, double eps) {
  __shared__ double partial[BT / 32];
  const int64_t c = blockIdx.x, M = N * S;
  // element i of channel c: x[n, c, s] with n = i / S, s = i % S
  auto at = [&](int64_t i) { return ((i / S) * C + c) * S + i % S; };
  double mean, invstd;
  if (training) {
    double sum = 0;
    for (int64_t i = threadIdx.x; i < M; i += BT) sum += x[at(i)];
    mean = block_sum<BT>(sum, partial) / double(M);
    double sq = 0;
    for (int64_t i = threadIdx.x; i < M; i += BT) {
      const double d = x[at(i)] - mean;
      sq += d * d;
    }
    sq = block_sum<BT>(sq, partial);
    const double var = sq / double(M);
    invstd = 1.0 / sqrt(var + eps);
    if (threadIdx.x == 0) {
      if (running_mean)
        running_mean[c] = float((1 - momentum) * running_mean[c] + momentum * mean);
      if (running_var) {
        const double unbiased = M > 1 ? sq / double(M - 1) : var;
        running_var[c] = float((1 - momentum) * running_var[c] + momentum * unbiased);
      }
    }
  } else {
    mean = running_mean[c];
    invstd = 1.0 / sqrt(double(running_var[c]) + eps);
  }
  if (threadIdx.x == 0) {
    save_mean[c] = float(mean);
    save_invstd[c] = float(invstd);
  }
  const double g = gamma ? double(gamma[c]) : 1.0, b = beta ? double(beta[c]) : 0.0;
  const float a = float(g * invstd), shift = float(b - mean * g * invstd);
  for (int64_t i = threadIdx.x; i < M; i += BT) y[at(i)] = a * x[at(i)] + shift;
}

__global__ void __launch_bounds__(BT)
    batch_norm_backward_kernel(int64_t N, int64_t C, int64_t S, float* dx, float* dgamma,
                               float* dbeta, const float* dy, const float* x, const float* gamma,
                               const float* save_mean, const float* save_invstd, bool training) {
  __shared__ double partial[BT / 32];
  const int64_t c = blockIdx.x, M = N * S;
  auto at = [&](int64_t i) { return ((i / S) * C + c) * S + i % S; };
  const double mean = save_mean[c], invstd = save_invstd[c];
  double sum_dy = 0, sum_dy_xhat = 0;
  for (int64_t i = threadIdx.x; i < M; i += BT) {
    const int64_t j = at(i);
    sum_dy += dy[j];
    sum_dy_xhat += dy[j] * ((x[j] - mean) * invstd);
  }
  sum_dy = block_sum<BT>(sum_dy, partial);
  sum_dy_xhat = block_sum<BT>(sum_dy_xhat, partial);
  if (threadIdx.x == 0) {
    if (dgamma) dgamma[c] += float(sum_dy_xhat);
    if (dbeta) dbeta[c] += float(sum_dy);
  }
  if (!dx) return;
  // train: dx = g·invstd·(dy − mean(dy) − x̂·mean(dy·x̂)); eval: dx = g·invstd·dy
  const double k = (gamma ? double(gamma[c]) : 1.0) * invstd;
  const double mdy = training ? sum_dy / double(M) : 0.0;
  const double mdyx = training ? sum_dy_xhat / double(M) : 0.0;
  for (int64_t i = threadIdx.x; i < M; i += BT) {
    const int64_t j = at(i);
    // eval: x does not enter (an infinite or NaN x must not make 0 · inf)
    dx[j] = training ? float(k * (dy[j] - mdy - (x[j] - mean) * invstd * mdyx)) : float(k * dy[j]);
  }
}

}  // namespace

void batch_norm_forward(int64_t N, int64_t C, int64_t S, float* y, float* save_mean,
                        float* save_invstd, const float* x, const float* gamma, const float* beta,
                        float* running_mean, float* running_var, bool training, double momentum,
                        double eps) {
  if (C <= 0) return;
  batch_norm_forward_kernel<<<unsigned(C), BT>>>(N, C, S, y, save_mean, save_invstd, x, gamma,
                                                 beta, running_mean, running_var, training,
                                                 momentum, eps);
  CNNFAST_CUDA_CHECK_LAUNCH("batch_norm_forward_kernel");
}

void batch_norm_backward(int64_t N, int64_t C, int64_t S, float* dx, float* dgamma, float* dbeta,
                         const float* dy, const float* x, const float* gamma,
                         const float* save_mean, const float* save_invstd, bool training) {
  if (C <= 0) return;
  batch_norm_backward_kernel<<<unsigned(C), BT>>>(N, C, S, dx, dgamma, dbeta, dy, x, gamma,
                                                  save_mean, save_invstd, training);
  CNNFAST_CUDA_CHECK_LAUNCH("batch_norm_backward_kernel");
}

}  // namespace cnnfast::cuda
