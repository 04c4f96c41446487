// conv.h — the public C++ API of 2-D convolution (cross-correlation, PyTorch's conv2d semantics).
// Layouts: x is (N, C, H, W), weight is (K, C/groups, R, S), bias is (K,), y is (N, K, P, Q).
// Gradient convention: activation gradients (dx) are overwritten; parameter gradients (dw, db)
// are accumulated (+=), so callers zero them once per step.
#pragma once
#include <cstdint>

namespace cnnfast {

struct Conv2dParams {
  int64_t N, C, H, W;          // input  (N, C, H, W)
  int64_t K, R, S;             // weight (K, C/groups, R, S)
  int64_t P, Q;                // output (N, K, P, Q)
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_bottom, pad_left, pad_right;
  int64_t dil_h, dil_w;
  int64_t groups;
  int64_t Cg() const { return C / groups; }
  int64_t Kg() const { return K / groups; }
};

// Validates every argument (throws std::invalid_argument naming it) and derives P, Q.
Conv2dParams conv2d_params(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t weight_c,
                           int64_t R, int64_t S, int64_t stride_h, int64_t stride_w, int64_t pad_top,
                           int64_t pad_bottom, int64_t pad_left, int64_t pad_right, int64_t dil_h,
                           int64_t dil_w, int64_t groups);

// automatic: the fastest algorithm for the shape (see conv2d.cpp); gemm: im2col + packed GEMM;
// implicit: forward and weight gradient as an implicit GEMM read straight from the padded image
// (backward-data: the implicit forward on dy with flipped filters at unit stride, else gemm);
// direct: padded-plane row kernels (depthwise, tiny C); winograd: F(4x4,3x3) or F(2x2,3x3) by
// plane size, winograd_f2 / winograd_f4 that tile, for 3x3 stride-1 forward and backward-data
// (the weight gradient too on undilated layers, else gemm; cuda.h says what the CUDA backend
// runs); ref: the naive twin.
enum class ConvAlgo { automatic, gemm, ref, direct, winograd, winograd_f2, winograd_f4, implicit };
// "auto"|"gemm"|"implicit"|"direct"|"winograd"|"winograd_f2"|"winograd_f4"|"ref"
ConvAlgo conv_algo_from_name(const char* name);
inline bool is_winograd(ConvAlgo a) {
  return a == ConvAlgo::winograd || a == ConvAlgo::winograd_f2 || a == ConvAlgo::winograd_f4;
}
// The Winograd output tile an algo asks for: 2, 4, or 0 (chosen by shape).
inline int winograd_tile_of(ConvAlgo a) {
  return a == ConvAlgo::winograd_f2 ? 2 : a == ConvAlgo::winograd_f4 ? 4 : 0;
}

// Fused output activation: y = act(conv(x, w) + b), applied while the output tile is in cache.
enum class Activation { none, relu };
Activation activation_from_name(const char* name);  // "none" | "relu"

// y = act(conv(x, w) + b). b may be null.
template <class T>
void conv2d_forward(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b,
                    ConvAlgo algo = ConvAlgo::automatic, Activation act = Activation::none);
// The activation's backward: dz = dy where y > 0, else 0 (ReLU; y is the forward output, count
// elements). Feed dz to conv2d_backward_data/_weight to differentiate a fused conv + ReLU.
template <class T>
void relu_backward_mask(int64_t count, T* dz, const T* dy, const T* y);
// dx = conv2d's adjoint applied to dy (overwrites dx).
template <class T>
void conv2d_backward_data(const Conv2dParams& p, T* dx, const T* dy, const T* w,
                          ConvAlgo algo = ConvAlgo::automatic);
// dw += dy ⋆ x, db += Σ dy (either may be null to skip it).
template <class T>
void conv2d_backward_weight(const Conv2dParams& p, T* dw, T* db, const T* dy, const T* x,
                            ConvAlgo algo = ConvAlgo::automatic);

}  // namespace cnnfast
