// conv_params.cpp — validation and output-size derivation for conv2d (shared by every algorithm).
#include <string>

#include "cnnfast/checked.h"
#include "cnnfast/conv.h"

namespace cnnfast {
namespace {
std::string s(int64_t v) { return std::to_string(v); }
}  // namespace

Conv2dParams conv2d_params(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t weight_c,
                           int64_t R, int64_t S, int64_t stride_h, int64_t stride_w, int64_t pad_top,
                           int64_t pad_bottom, int64_t pad_left, int64_t pad_right, int64_t dil_h,
                           int64_t dil_w, int64_t groups) {
  if (N < 0 || C < 0 || H < 0 || W < 0) arg_error("input: negative dimension");
  if (K <= 0 || weight_c <= 0 || R <= 0 || S <= 0)
    arg_error("weight: every dimension must be >= 1, got (" + s(K) + ", " + s(weight_c) + ", " +
              s(R) + ", " + s(S) + ")");
  if (groups < 1) arg_error("groups must be >= 1, got " + s(groups));
  if (stride_h < 1 || stride_w < 1)
    arg_error("stride must be >= 1, got (" + s(stride_h) + ", " + s(stride_w) + ")");
  if (dil_h < 1 || dil_w < 1)
    arg_error("dilation must be >= 1, got (" + s(dil_h) + ", " + s(dil_w) + ")");
  if (pad_top < 0 || pad_bottom < 0 || pad_left < 0 || pad_right < 0)
    arg_error("padding must be >= 0");
  if (C % groups) arg_error("groups=" + s(groups) + " must divide input channels C=" + s(C));
  if (K % groups) arg_error("groups=" + s(groups) + " must divide output channels K=" + s(K));
  if (C / groups != weight_c)
    arg_error("weight: expected C/groups = " + s(C / groups) + " input channels per group, got " +
              s(weight_c));
  const int64_t eff_r = checked_add(checked_mul(dil_h, R - 1), 1, "dilated kernel height");
  const int64_t eff_s = checked_add(checked_mul(dil_w, S - 1), 1, "dilated kernel width");
  const int64_t hp = checked_add(checked_add(H, pad_top), pad_bottom, "padded height");
  const int64_t wp = checked_add(checked_add(W, pad_left), pad_right, "padded width");
  if (eff_r > hp || eff_s > wp)
    arg_error("kernel (dilated " + s(eff_r) + "x" + s(eff_s) + ") is larger than the padded input (" +
              s(hp) + "x" + s(wp) + ")");
  Conv2dParams p{};
  p.N = N; p.C = C; p.H = H; p.W = W; p.K = K; p.R = R; p.S = S;
  p.P = (hp - eff_r) / stride_h + 1;
  p.Q = (wp - eff_s) / stride_w + 1;
  p.stride_h = stride_h; p.stride_w = stride_w;
  p.pad_top = pad_top; p.pad_bottom = pad_bottom; p.pad_left = pad_left; p.pad_right = pad_right;
  p.dil_h = dil_h; p.dil_w = dil_w; p.groups = groups;
  checked_prod({N, C, H, W}, "input size");
  checked_prod({N, K, p.P, p.Q}, "output size");
  checked_prod({K, weight_c, R, S}, "weight size");
  checked_prod({weight_c, R, S, p.P, p.Q}, "im2col size");
  return p;
}

Activation activation_from_name(const char* name) {
  const std::string n(name);
  if (n == "none") return Activation::none;
  if (n == "relu") return Activation::relu;
  arg_error("activation must be None or 'relu'; got '" + n + "'");
}

ConvAlgo conv_algo_from_name(const char* name) {
  const std::string n(name);
  if (n == "auto") return ConvAlgo::automatic;
  if (n == "gemm") return ConvAlgo::gemm;
  if (n == "ref") return ConvAlgo::ref;
  if (n == "direct") return ConvAlgo::direct;
  if (n == "winograd") return ConvAlgo::winograd;
  if (n == "winograd_f2") return ConvAlgo::winograd_f2;
  if (n == "winograd_f4") return ConvAlgo::winograd_f4;
  if (n == "implicit") return ConvAlgo::implicit;
  arg_error("algo must be one of 'auto', 'gemm', 'implicit', 'direct', 'winograd', "
            "'winograd_f2', 'winograd_f4', 'ref'; got '" + n + "'");
}

}  // namespace cnnfast
