// conv_family_params.cpp — validation and size derivation for conv3d, transposed convolution and
// tiled / locally connected convolution. Every size is 64-bit and overflow-checked.
#include <string>

#include "cnnfast/checked.h"
#include "cnnfast/conv_family.h"

namespace cnnfast {
namespace {
std::string s(int64_t v) { return std::to_string(v); }
std::string dims3(int64_t a, int64_t b, int64_t c) {
  return "(" + s(a) + ", " + s(b) + ", " + s(c) + ")";
}
}  // namespace

Conv3dParams conv3d_params(int64_t N, int64_t C, int64_t D, int64_t H, int64_t W, int64_t K,
                           int64_t weight_c, int64_t KD, int64_t KH, int64_t KW,
                           const int64_t stride[3], const int64_t pad[6], const int64_t dil[3],
                           int64_t groups) {
  if (N < 0 || C < 0 || D < 0 || H < 0 || W < 0) arg_error("input: negative dimension");
  if (K <= 0 || weight_c <= 0 || KD <= 0 || KH <= 0 || KW <= 0)
    arg_error("weight: every dimension must be >= 1, got (" + s(K) + ", " + s(weight_c) + ", " +
              s(KD) + ", " + s(KH) + ", " + s(KW) + ")");
  if (groups < 1) arg_error("groups must be >= 1, got " + s(groups));
  for (int i = 0; i < 3; ++i) {
    if (stride[i] < 1) arg_error("stride must be >= 1, got " + dims3(stride[0], stride[1], stride[2]));
    if (dil[i] < 1) arg_error("dilation must be >= 1, got " + dims3(dil[0], dil[1], dil[2]));
  }
  for (int i = 0; i < 6; ++i)
    if (pad[i] < 0) arg_error("padding must be >= 0");
  if (C % groups) arg_error("groups=" + s(groups) + " must divide input channels C=" + s(C));
  if (K % groups) arg_error("groups=" + s(groups) + " must divide output channels K=" + s(K));
  if (C / groups != weight_c)
    arg_error("weight: expected C/groups = " + s(C / groups) + " input channels per group, got " +
              s(weight_c));
  const int64_t in[3] = {D, H, W}, ker[3] = {KD, KH, KW};
  int64_t out[3];
  for (int i = 0; i < 3; ++i) {
    const int64_t eff = checked_add(checked_mul(dil[i], ker[i] - 1), 1, "dilated kernel extent");
    const int64_t padded = checked_add(checked_add(in[i], pad[2 * i]), pad[2 * i + 1], "padded size");
    if (eff > padded)
      arg_error("kernel (dilated extent " + s(eff) + " along spatial dim " + s(i) +
                ") is larger than the padded input (" + s(padded) + ")");
    out[i] = (padded - eff) / stride[i] + 1;
  }
  Conv3dParams p{};
  p.N = N; p.C = C; p.D = D; p.H = H; p.W = W;
  p.K = K; p.KD = KD; p.KH = KH; p.KW = KW;
  p.OD = out[0]; p.OH = out[1]; p.OW = out[2];
  p.stride_d = stride[0]; p.stride_h = stride[1]; p.stride_w = stride[2];
  p.pad_front = pad[0]; p.pad_back = pad[1]; p.pad_top = pad[2]; p.pad_bottom = pad[3];
  p.pad_left = pad[4]; p.pad_right = pad[5];
  p.dil_d = dil[0]; p.dil_h = dil[1]; p.dil_w = dil[2];
  p.groups = groups;
  checked_prod({N, C, D, H, W}, "input size");
  checked_prod({N, K, p.OD, p.OH, p.OW}, "output size");
  checked_prod({K, weight_c, KD, KH, KW}, "weight size");
  checked_prod({weight_c, KD, KH, KW, p.OD, p.OH, p.OW}, "vol2col size");
  return p;
}

namespace {
// Output extent of a transposed convolution along one dimension (>= 1, or argument error).
int64_t transposed_extent(int64_t in, int64_t k, int64_t stride, int64_t pad_before,
                          int64_t pad_after, int64_t out_pad, int64_t dil, int dim) {
  if (stride < 1) arg_error("stride must be >= 1, got " + s(stride));
  if (dil < 1) arg_error("dilation must be >= 1, got " + s(dil));
  if (pad_before < 0 || pad_after < 0) arg_error("padding must be >= 0");
  if (out_pad < 0 || out_pad >= stride)
    arg_error("output_padding must be in [0, stride) along spatial dim " + s(dim) + ", got " +
              s(out_pad) + " with stride " + s(stride));
  // (in - 1)·stride − pads + dil·(k − 1) + out_pad + 1
  int64_t v = checked_mul(in - 1, stride, "transposed output size");
  v = checked_add(v, checked_mul(dil, k - 1, "dilated kernel extent"), "transposed output size");
  v = checked_add(v, out_pad + 1 - pad_before - pad_after, "transposed output size");
  if (in < 1 || v < 1)
    arg_error("transposed output size along spatial dim " + s(dim) + " is " + s(v) +
              " (input extent " + s(in) + ", kernel " + s(k) + ", stride " + s(stride) +
              ", padding " + s(pad_before) + "+" + s(pad_after) + "): must be >= 1");
  return v;
}

void check_transposed_channels(int64_t C_in, int64_t weight_cin, int64_t weight_cout_g,
                               int64_t groups) {
  if (groups < 1) arg_error("groups must be >= 1, got " + s(groups));
  if (weight_cin != C_in)
    arg_error("weight: expected C_in = " + s(C_in) + " as its first dimension (C_in, C_out/groups, "
              "...), got " + s(weight_cin));
  if (C_in % groups) arg_error("groups=" + s(groups) + " must divide input channels C_in=" + s(C_in));
  if (weight_cout_g < 1) arg_error("weight: C_out/groups must be >= 1");
}
}  // namespace

Conv2dParams conv_transpose2d_params(int64_t N, int64_t C_in, int64_t H_in, int64_t W_in,
                                     int64_t weight_cin, int64_t weight_cout_g, int64_t R,
                                     int64_t S, const int64_t stride[2], const int64_t pad[4],
                                     const int64_t output_padding[2], const int64_t dil[2],
                                     int64_t groups) {
  check_transposed_channels(C_in, weight_cin, weight_cout_g, groups);
  if (R < 1 || S < 1) arg_error("weight: kernel dimensions must be >= 1");
  const int64_t H = transposed_extent(H_in, R, stride[0], pad[0], pad[1], output_padding[0], dil[0], 0);
  const int64_t W = transposed_extent(W_in, S, stride[1], pad[2], pad[3], output_padding[1], dil[1], 1);
  const int64_t C_out = checked_mul(weight_cout_g, groups, "output channels");
  Conv2dParams p = conv2d_params(N, C_out, H, W, C_in, weight_cout_g, R, S, stride[0], stride[1],
                                 pad[0], pad[1], pad[2], pad[3], dil[0], dil[1], groups);
  if (p.P != H_in || p.Q != W_in) arg_error("internal: adjoint conv2d size mismatch");
  return p;
}

Conv3dParams conv_transpose3d_params(int64_t N, int64_t C_in, int64_t D_in, int64_t H_in,
                                     int64_t W_in, int64_t weight_cin, int64_t weight_cout_g,
                                     int64_t KD, int64_t KH, int64_t KW, const int64_t stride[3],
                                     const int64_t pad[6], const int64_t output_padding[3],
                                     const int64_t dil[3], int64_t groups) {
  check_transposed_channels(C_in, weight_cin, weight_cout_g, groups);
  if (KD < 1 || KH < 1 || KW < 1) arg_error("weight: kernel dimensions must be >= 1");
  const int64_t in[3] = {D_in, H_in, W_in}, ker[3] = {KD, KH, KW};
  int64_t out[3];
  for (int i = 0; i < 3; ++i)
    out[i] = transposed_extent(in[i], ker[i], stride[i], pad[2 * i], pad[2 * i + 1],
                               output_padding[i], dil[i], i);
  const int64_t C_out = checked_mul(weight_cout_g, groups, "output channels");
  Conv3dParams p = conv3d_params(N, C_out, out[0], out[1], out[2], C_in, weight_cout_g, KD, KH,
                                 KW, stride, pad, dil, groups);
  if (p.OD != D_in || p.OH != H_in || p.OW != W_in)
    arg_error("internal: adjoint conv3d size mismatch");
  return p;
}

TiledConvParams tiled_conv_params(const Conv3dParams& geometry, int64_t TD, int64_t TH,
                                  int64_t TW, bool bias_per_location) {
  if (geometry.groups != 1) arg_error("groups: tiled convolution has no groups");
  if (TD < 1 || TH < 1 || TW < 1)
    arg_error("tile: every tile size must be >= 1, got " + dims3(TD, TH, TW));
  TiledConvParams p{geometry, TD, TH, TW, bias_per_location};
  const int64_t banks = checked_prod({TD, TH, TW}, "tile count");
  checked_prod({banks, geometry.K, geometry.C, geometry.taps()}, "weight size");
  if (bias_per_location &&
      (TD != geometry.OD || TH != geometry.OH || TW != geometry.OW))
    arg_error("locally connected: the weight's locations " + dims3(TD, TH, TW) +
              " must equal the output size " + dims3(geometry.OD, geometry.OH, geometry.OW));
  return p;
}

}  // namespace cnnfast
