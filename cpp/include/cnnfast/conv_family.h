// conv_family.h — the public C++ API of the convolution family beyond conv2d: 3-D convolution,
// transposed convolution (the adjoint of conv2d/conv3d), tiled and locally connected convolution.
// 1-D forms are the 2-D/3-D ones with unit leading spatial extents (same memory, no copy).
// Layouts: x is (N, C, D, H, W), conv weight is (K, C/groups, KD, KH, KW), y is (N, K, OD, OH, OW).
// Gradient convention: activation gradients are overwritten; weight/bias gradients accumulate (+=).
#pragma once
#include <cstdint>

#include "cnnfast/conv.h"

namespace cnnfast {

struct Conv3dParams {
  int64_t N, C, D, H, W;        // input  (N, C, D, H, W)
  int64_t K, KD, KH, KW;        // weight (K, C/groups, KD, KH, KW)
  int64_t OD, OH, OW;           // output (N, K, OD, OH, OW)
  int64_t stride_d, stride_h, stride_w;
  int64_t pad_front, pad_back, pad_top, pad_bottom, pad_left, pad_right;
  int64_t dil_d, dil_h, dil_w;
  int64_t groups;
  int64_t Cg() const { return C / groups; }
  int64_t Kg() const { return K / groups; }
  int64_t taps() const { return KD * KH * KW; }
  int64_t in_volume() const { return D * H * W; }
  int64_t out_volume() const { return OD * OH * OW; }
};

// Validates every argument (throws std::invalid_argument naming it) and derives OD, OH, OW.
// pad is (front, back, top, bottom, left, right).
Conv3dParams conv3d_params(int64_t N, int64_t C, int64_t D, int64_t H, int64_t W, int64_t K,
                           int64_t weight_c, int64_t KD, int64_t KH, int64_t KW,
                           const int64_t stride[3], const int64_t pad[6], const int64_t dil[3],
                           int64_t groups);

template <class T>
void conv3d_forward(const Conv3dParams& p, T* y, const T* x, const T* w, const T* b,
                    ConvAlgo algo = ConvAlgo::automatic);
template <class T>
void conv3d_backward_data(const Conv3dParams& p, T* dx, const T* dy, const T* w,
                          ConvAlgo algo = ConvAlgo::automatic);
template <class T>
void conv3d_backward_weight(const Conv3dParams& p, T* dw, T* db, const T* dy, const T* x,
                            ConvAlgo algo = ConvAlgo::automatic);

// ---- transposed convolution -----------------------------------------------------------------
// conv_transpose is described by the params of its ADJOINT convolution `p`, which maps the
// transposed conv's output (N, C_out, H_out, W_out) to its input (N, C_in, H_in, W_in):
// p.C = C_out, p.K = C_in, p.(H, W) = output size, p.(P, Q) = input size; the weight
// (C_in, C_out/groups, R, S) is exactly that conv's (K, C/groups, R, S) weight.
// pad is (top, bottom, left, right); output_padding < stride per dimension.
Conv2dParams conv_transpose2d_params(int64_t N, int64_t C_in, int64_t H_in, int64_t W_in,
                                     int64_t weight_cin, int64_t weight_cout_g, int64_t R,
                                     int64_t S, const int64_t stride[2], const int64_t pad[4],
                                     const int64_t output_padding[2], const int64_t dil[2],
                                     int64_t groups);
Conv3dParams conv_transpose3d_params(int64_t N, int64_t C_in, int64_t D_in, int64_t H_in,
                                     int64_t W_in, int64_t weight_cin, int64_t weight_cout_g,
                                     int64_t KD, int64_t KH, int64_t KW, const int64_t stride[3],
                                     const int64_t pad[6], const int64_t output_padding[3],
                                     const int64_t dil[3], int64_t groups);

// y (N, C_out, H_out, W_out) = conv2d_backward_data(x (N, C_in, H_in, W_in)) + b (C_out,)
template <class T>
void conv_transpose2d_forward(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                              ConvAlgo algo = ConvAlgo::automatic);
// dx = conv2d(dy, w) (overwrites); dw += dy ⋆ x as conv2d's weight gradient; db += Σ dy.
template <class T>
void conv_transpose2d_backward(const Conv2dParams& p, T* dx, T* dw, T* db, const T* dy,
                               const T* x, const T* w, ConvAlgo algo = ConvAlgo::automatic);
template <class T>
void conv_transpose3d_forward(const Conv3dParams& p, T* y, const T* x, const T* w, const T* b,
                              ConvAlgo algo = ConvAlgo::automatic);
template <class T>
void conv_transpose3d_backward(const Conv3dParams& p, T* dx, T* dw, T* db, const T* dy,
                               const T* x, const T* w, ConvAlgo algo = ConvAlgo::automatic);

// ---- tiled and locally connected convolution ------------------------------------------------
// Tiled convolution (Gregor & LeCun 2010): a (TD, TH, TW) grid of kernel banks rotated through
// space; output (od, oh, ow) uses bank (od mod TD, oh mod TH, ow mod TW).
//   weight is (TD, TH, TW, K, C, KD, KH, KW)
//   bias   is (TD, TH, TW, K)            — tiled
//          or (K, OD, OH, OW)            — locally connected (bias_per_location; T = output size)
// Locally connected = tiled with T = (OD, OH, OW). No groups.
struct TiledConvParams {
  Conv3dParams conv;  // the geometry (groups = 1); conv.K, conv.C, kernel, output size
  int64_t TD, TH, TW;
  bool bias_per_location;
  int64_t banks() const { return TD * TH * TW; }
  int64_t bank_weight_size() const { return conv.K * conv.C * conv.taps(); }
};

TiledConvParams tiled_conv_params(const Conv3dParams& geometry, int64_t TD, int64_t TH,
                                  int64_t TW, bool bias_per_location);

template <class T>
void tiled_conv_forward(const TiledConvParams& p, T* y, const T* x, const T* w, const T* b,
                        ConvAlgo algo = ConvAlgo::automatic);
template <class T>
void tiled_conv_backward_data(const TiledConvParams& p, T* dx, const T* dy, const T* w,
                              ConvAlgo algo = ConvAlgo::automatic);
template <class T>
void tiled_conv_backward_weight(const TiledConvParams& p, T* dw, T* db, const T* dy, const T* x,
                                ConvAlgo algo = ConvAlgo::automatic);

}  // namespace cnnfast
