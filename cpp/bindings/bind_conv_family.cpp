// bind_conv_family.cpp — bindings of conv3d, conv_transpose2d/3d and tiled convolution (1-D
// forms and locally connected layers are reshaped views of these in cnnfast.functional).
// Arguments arrive validated and contiguous; C++ re-validates sizes and releases the GIL.
#include <pybind11/stl.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "cnnfast/conv_family.h"
#include "common.h"

namespace cnnfast::py_bind {
namespace {

using I2 = std::array<int64_t, 2>;
using I3 = std::array<int64_t, 3>;
using I4 = std::array<int64_t, 4>;
using I6 = std::array<int64_t, 6>;
using OptArray = std::optional<py::array>;

void need_ndim(const py::array& a, int nd, const char* name, const char* layout) {
  if (a.ndim() != nd)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(nd) + "-D " + layout);
}

std::vector<int64_t> shape_of(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

void check_grad_out(const py::array& dy, const std::vector<int64_t>& want) {
  if (shape_of(dy) != want) throw py::value_error("grad_out: shape does not match the forward output");
}

template <class T>
const T* bias_ptr(const OptArray& b, const std::vector<int64_t>& want) {
  if (!b) return nullptr;
  if (shape_of(*b) != want) throw py::value_error("bias: wrong shape");
  return in_ptr<T>(*b, "bias");
}

template <class T>
T* maybe_output(bool need, const std::vector<int64_t>& shape, bool zero, py::object& slot) {
  if (!need) return nullptr;
  auto arr = new_output<T>(shape, zero);
  slot = arr;
  return arr.mutable_data();
}

// ---- conv3d ------------------------------------------------------------------------------------
Conv3dParams conv3d_from(const py::array& x, const py::array& w, I3 stride, I6 pad, I3 dil,
                         int64_t groups) {
  need_ndim(x, 5, "input", "(N, C, D, H, W)");
  need_ndim(w, 5, "weight", "(K, C/groups, KD, KH, KW)");
  return conv3d_params(x.shape(0), x.shape(1), x.shape(2), x.shape(3), x.shape(4), w.shape(0),
                       w.shape(1), w.shape(2), w.shape(3), w.shape(4), stride.data(), pad.data(),
                       dil.data(), groups);
}

template <class T>
py::array conv3d_fwd(const py::array& x, const py::array& w, const OptArray& b, I3 stride, I6 pad,
                     I3 dil, int64_t groups, const std::string& algo) {
  const Conv3dParams p = conv3d_from(x, w, stride, pad, dil, groups);
  const ConvAlgo a = conv_algo_from_name(algo.c_str());
  const T *xp = in_ptr<T>(x, "input"), *wp = in_ptr<T>(w, "weight");
  const T* bp = bias_ptr<T>(b, {p.K});
  auto y = new_output<T>({p.N, p.K, p.OD, p.OH, p.OW});
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    conv3d_forward<T>(p, yp, xp, wp, bp, a);
  }
  return std::move(y);
}

template <class T>
py::tuple conv3d_bwd(const py::array& dy, const py::array& x, const py::array& w, bool has_bias,
                     I3 stride, I6 pad, I3 dil, int64_t groups, bool need_dx, bool need_dw,
                     bool need_db, const std::string& algo) {
  const Conv3dParams p = conv3d_from(x, w, stride, pad, dil, groups);
  const ConvAlgo a = conv_algo_from_name(algo.c_str());
  check_grad_out(dy, {p.N, p.K, p.OD, p.OH, p.OW});
  const T *dyp = in_ptr<T>(dy, "grad_out"), *xp = in_ptr<T>(x, "input"), *wp = in_ptr<T>(w, "weight");
  py::object dx = py::none(), dw = py::none(), db = py::none();
  T* dxp = maybe_output<T>(need_dx, shape_of(x), false, dx);
  T* dwp = maybe_output<T>(need_dw, shape_of(w), true, dw);
  T* dbp = maybe_output<T>(need_db && has_bias, {p.K}, true, db);
  {
    py::gil_scoped_release nogil;
    if (dxp) conv3d_backward_data<T>(p, dxp, dyp, wp, a);
    if (dwp || dbp) conv3d_backward_weight<T>(p, dwp, dbp, dyp, xp, a);
  }
  return py::make_tuple(dx, dw, db);
}

// ---- transposed convolution ---------------------------------------------------------------------
Conv2dParams tconv2d_from(const py::array& x, const py::array& w, I2 stride, I4 pad, I2 out_pad,
                          I2 dil, int64_t groups) {
  need_ndim(x, 4, "input", "(N, C_in, H, W)");
  need_ndim(w, 4, "weight", "(C_in, C_out/groups, R, S)");
  return conv_transpose2d_params(x.shape(0), x.shape(1), x.shape(2), x.shape(3), w.shape(0),
                                 w.shape(1), w.shape(2), w.shape(3), stride.data(), pad.data(),
                                 out_pad.data(), dil.data(), groups);
}

Conv3dParams tconv3d_from(const py::array& x, const py::array& w, I3 stride, I6 pad, I3 out_pad,
                          I3 dil, int64_t groups) {
  need_ndim(x, 5, "input", "(N, C_in, D, H, W)");
  need_ndim(w, 5, "weight", "(C_in, C_out/groups, KD, KH, KW)");
  return conv_transpose3d_params(x.shape(0), x.shape(1), x.shape(2), x.shape(3), x.shape(4),
                                 w.shape(0), w.shape(1), w.shape(2), w.shape(3), w.shape(4),
                                 stride.data(), pad.data(), out_pad.data(), dil.data(), groups);
}

std::vector<int64_t> tconv_out_shape(const Conv2dParams& p) { return {p.N, p.C, p.H, p.W}; }
std::vector<int64_t> tconv_out_shape(const Conv3dParams& p) { return {p.N, p.C, p.D, p.H, p.W}; }
template <class T>
void tconv_fwd_run(const Conv2dParams& p, T* y, const T* x, const T* w, const T* b, ConvAlgo a) {
  conv_transpose2d_forward<T>(p, y, x, w, b, a);
}
template <class T>
void tconv_fwd_run(const Conv3dParams& p, T* y, const T* x, const T* w, const T* b, ConvAlgo a) {
  conv_transpose3d_forward<T>(p, y, x, w, b, a);
}
template <class T>
void tconv_bwd_run(const Conv2dParams& p, T* dx, T* dw, T* db, const T* dy, const T* x,
                   const T* w, ConvAlgo a) {
  conv_transpose2d_backward<T>(p, dx, dw, db, dy, x, w, a);
}
template <class T>
void tconv_bwd_run(const Conv3dParams& p, T* dx, T* dw, T* db, const T* dy, const T* x,
                   const T* w, ConvAlgo a) {
  conv_transpose3d_backward<T>(p, dx, dw, db, dy, x, w, a);
}

// One forward/backward pair for 2-D (S=I2, P=I4) and 3-D (S=I3, P=I6).
template <class T, class S, class P>
py::array tconv_fwd(const py::array& x, const py::array& w, const OptArray& b, S stride, P pad,
                    S out_pad, S dil, int64_t groups, const std::string& algo) {
  const auto p = [&] {
    if constexpr (std::tuple_size<S>::value == 2) return tconv2d_from(x, w, stride, pad, out_pad, dil, groups);
    else return tconv3d_from(x, w, stride, pad, out_pad, dil, groups);
  }();
  const ConvAlgo a = conv_algo_from_name(algo.c_str());
  const T *xp = in_ptr<T>(x, "input"), *wp = in_ptr<T>(w, "weight");
  const T* bp = bias_ptr<T>(b, {p.C});
  auto y = new_output<T>(tconv_out_shape(p));
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    tconv_fwd_run<T>(p, yp, xp, wp, bp, a);
  }
  return std::move(y);
}

template <class T, class S, class P>
py::tuple tconv_bwd(const py::array& dy, const py::array& x, const py::array& w, bool has_bias,
                    S stride, P pad, S out_pad, S dil, int64_t groups, bool need_dx, bool need_dw,
                    bool need_db, const std::string& algo) {
  const auto p = [&] {
    if constexpr (std::tuple_size<S>::value == 2) return tconv2d_from(x, w, stride, pad, out_pad, dil, groups);
    else return tconv3d_from(x, w, stride, pad, out_pad, dil, groups);
  }();
  const ConvAlgo a = conv_algo_from_name(algo.c_str());
  check_grad_out(dy, tconv_out_shape(p));
  const T *dyp = in_ptr<T>(dy, "grad_out"), *xp = in_ptr<T>(x, "input"), *wp = in_ptr<T>(w, "weight");
  py::object dx = py::none(), dw = py::none(), db = py::none();
  T* dxp = maybe_output<T>(need_dx, shape_of(x), false, dx);
  T* dwp = maybe_output<T>(need_dw, shape_of(w), true, dw);
  T* dbp = maybe_output<T>(need_db && has_bias, {p.C}, true, db);
  {
    py::gil_scoped_release nogil;
    tconv_bwd_run<T>(p, dxp, dwp, dbp, dyp, xp, wp, a);
  }
  return py::make_tuple(dx, dw, db);
}

// ---- tiled / locally connected -------------------------------------------------------------------
TiledConvParams tiled_from(const py::array& x, const py::array& w, I3 stride, I6 pad, I3 dil,
                           bool per_location) {
  need_ndim(x, 5, "input", "(N, C, D, H, W)");
  need_ndim(w, 8, "weight", "(TD, TH, TW, K, C, KD, KH, KW)");
  const Conv3dParams g = conv3d_params(x.shape(0), x.shape(1), x.shape(2), x.shape(3),
                                       x.shape(4), w.shape(3), w.shape(4), w.shape(5), w.shape(6),
                                       w.shape(7), stride.data(), pad.data(), dil.data(), 1);
  return tiled_conv_params(g, w.shape(0), w.shape(1), w.shape(2), per_location);
}

std::vector<int64_t> tiled_bias_shape(const TiledConvParams& p) {
  const Conv3dParams& c = p.conv;
  if (p.bias_per_location) return {c.K, c.OD, c.OH, c.OW};
  return {p.TD, p.TH, p.TW, c.K};
}

template <class T>
py::array tiled_fwd(const py::array& x, const py::array& w, const OptArray& b, I3 stride, I6 pad,
                    I3 dil, bool per_location, const std::string& algo) {
  const TiledConvParams p = tiled_from(x, w, stride, pad, dil, per_location);
  const ConvAlgo a = conv_algo_from_name(algo.c_str());
  const T *xp = in_ptr<T>(x, "input"), *wp = in_ptr<T>(w, "weight");
  const T* bp = bias_ptr<T>(b, tiled_bias_shape(p));
  auto y = new_output<T>({p.conv.N, p.conv.K, p.conv.OD, p.conv.OH, p.conv.OW});
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    tiled_conv_forward<T>(p, yp, xp, wp, bp, a);
  }
  return std::move(y);
}

template <class T>
py::tuple tiled_bwd(const py::array& dy, const py::array& x, const py::array& w, bool has_bias,
                    I3 stride, I6 pad, I3 dil, bool per_location, bool need_dx, bool need_dw,
                    bool need_db, const std::string& algo) {
  const TiledConvParams p = tiled_from(x, w, stride, pad, dil, per_location);
  const ConvAlgo a = conv_algo_from_name(algo.c_str());
  check_grad_out(dy, {p.conv.N, p.conv.K, p.conv.OD, p.conv.OH, p.conv.OW});
  const T *dyp = in_ptr<T>(dy, "grad_out"), *xp = in_ptr<T>(x, "input"), *wp = in_ptr<T>(w, "weight");
  py::object dx = py::none(), dw = py::none(), db = py::none();
  T* dxp = maybe_output<T>(need_dx, shape_of(x), false, dx);
  T* dwp = maybe_output<T>(need_dw, shape_of(w), true, dw);
  T* dbp = maybe_output<T>(need_db && has_bias, tiled_bias_shape(p), true, db);
  {
    py::gil_scoped_release nogil;
    if (dxp) tiled_conv_backward_data<T>(p, dxp, dyp, wp, a);
    if (dwp || dbp) tiled_conv_backward_weight<T>(p, dwp, dbp, dyp, xp, a);
  }
  return py::make_tuple(dx, dw, db);
}

}  // namespace
}  // namespace cnnfast::py_bind

using namespace cnnfast::py_bind;

CNNFAST_BINDINGS(conv_family) {
  m.def("conv3d_forward_f32", &conv3d_fwd<float>);
  m.def("conv3d_forward_f64", &conv3d_fwd<double>);
  m.def("conv3d_backward_f32", &conv3d_bwd<float>);
  m.def("conv3d_backward_f64", &conv3d_bwd<double>);
  m.def("conv_transpose2d_forward_f32", &tconv_fwd<float, I2, I4>);
  m.def("conv_transpose2d_forward_f64", &tconv_fwd<double, I2, I4>);
  m.def("conv_transpose2d_backward_f32", &tconv_bwd<float, I2, I4>);
  m.def("conv_transpose2d_backward_f64", &tconv_bwd<double, I2, I4>);
  m.def("conv_transpose3d_forward_f32", &tconv_fwd<float, I3, I6>);
  m.def("conv_transpose3d_forward_f64", &tconv_fwd<double, I3, I6>);
  m.def("conv_transpose3d_backward_f32", &tconv_bwd<float, I3, I6>);
  m.def("conv_transpose3d_backward_f64", &tconv_bwd<double, I3, I6>);
  m.def("tiled_conv_forward_f32", &tiled_fwd<float>);
  m.def("tiled_conv_forward_f64", &tiled_fwd<double>);
  m.def("tiled_conv_backward_f32", &tiled_bwd<float>);
  m.def("tiled_conv_backward_f64", &tiled_bwd<double>);
}
