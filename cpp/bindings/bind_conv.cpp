// bind_conv.cpp — conv2d forward/backward bindings. Arguments arrive validated and contiguous
// from cnnfast.functional; C++ re-validates sizes (conv2d_params) and releases the GIL.
#include <pybind11/stl.h>

#include <array>
#include <optional>
#include <vector>

#include "cnnfast/conv.h"
#include "common.h"

namespace cnnfast::py_bind {
namespace {

using I2 = std::array<int64_t, 2>;
using I4 = std::array<int64_t, 4>;  // (top, bottom, left, right)

Conv2dParams params_from(const py::array& x, const py::array& w, I2 stride, I4 pad, I2 dil,
                         int64_t groups) {
  if (x.ndim() != 4) throw py::value_error("input: expected 4-D (N, C, H, W)");
  if (w.ndim() != 4) throw py::value_error("weight: expected 4-D (K, C/groups, R, S)");
  return conv2d_params(x.shape(0), x.shape(1), x.shape(2), x.shape(3), w.shape(0), w.shape(1),
                       w.shape(2), w.shape(3), stride[0], stride[1], pad[0], pad[1], pad[2],
                       pad[3], dil[0], dil[1], groups);
}

template <class T>
py::array forward(const py::array& x, const py::array& w, const std::optional<py::array>& b,
                  I2 stride, I4 pad, I2 dil, int64_t groups, const std::string& algo,
                  const std::string& activation) {
  const Conv2dParams p = params_from(x, w, stride, pad, dil, groups);
  const ConvAlgo a = conv_algo_from_name(algo.c_str());
  const Activation act = activation_from_name(activation.c_str());
  const T* xp = in_ptr<T>(x, "input");
  const T* wp = in_ptr<T>(w, "weight");
  const T* bp = b ? in_ptr<T>(*b, "bias") : nullptr;
  if (b && (b->ndim() != 1 || b->shape(0) != p.K)) throw py::value_error("bias: expected (K,)");
  auto y = new_output<T>({p.N, p.K, p.P, p.Q});
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    conv2d_forward<T>(p, yp, xp, wp, bp, a, act);
  }
  return std::move(y);
}

template <class T>
py::tuple backward(const py::array& dy, const py::array& x, const py::array& w, bool has_bias,
                   I2 stride, I4 pad, I2 dil, int64_t groups, bool need_dx, bool need_dw,
                   bool need_db, const std::string& algo, const std::string& activation,
                   const std::optional<py::array>& output) {
  const Conv2dParams p = params_from(x, w, stride, pad, dil, groups);
  const ConvAlgo a = conv_algo_from_name(algo.c_str());
  const Activation act = activation_from_name(activation.c_str());
  if (dy.ndim() != 4 || dy.shape(0) != p.N || dy.shape(1) != p.K || dy.shape(2) != p.P ||
      dy.shape(3) != p.Q)
    throw py::value_error("grad_out: shape does not match the forward output");
  const T* dyp = in_ptr<T>(dy, "grad_out");
  py::array_t<T> masked;  // grad_out through the fused activation: (N, K, P, Q), recycled
  T* mp = nullptr;
  const T* yp = nullptr;
  if (act == Activation::relu) {
    if (!output) throw py::value_error("output: activation='relu' needs the forward output");
    if (output->ndim() != 4 || output->size() != dy.size())
      throw py::value_error("output: shape does not match grad_out");
    yp = in_ptr<T>(*output, "output");
    masked = new_output<T>({p.N, p.K, p.P, p.Q});
    mp = masked.mutable_data();
  }
  const T* xp = in_ptr<T>(x, "input");
  const T* wp = in_ptr<T>(w, "weight");
  py::object dx = py::none(), dw = py::none(), db = py::none();
  T *dxp = nullptr, *dwp = nullptr, *dbp = nullptr;
  if (need_dx) {
    auto arr = new_output<T>({p.N, p.C, p.H, p.W});
    dxp = arr.mutable_data();
    dx = arr;
  }
  if (need_dw) {
    auto arr = new_output<T>({p.K, p.Cg(), p.R, p.S}, /*zero=*/true);  // accumulated
    dwp = arr.mutable_data();
    dw = arr;
  }
  if (need_db && has_bias) {
    auto arr = new_output<T>({p.K}, /*zero=*/true);  // accumulated
    dbp = arr.mutable_data();
    db = arr;
  }
  {
    py::gil_scoped_release nogil;
    if (yp) {
      relu_backward_mask<T>(p.N * p.K * p.P * p.Q, mp, dyp, yp);
      dyp = mp;
    }
    if (dxp) conv2d_backward_data<T>(p, dxp, dyp, wp, a);
    if (dwp || dbp) conv2d_backward_weight<T>(p, dwp, dbp, dyp, xp, a);
  }
  return py::make_tuple(dx, dw, db);
}

}  // namespace
}  // namespace cnnfast::py_bind

using namespace cnnfast::py_bind;

CNNFAST_BINDINGS(conv2d) {
  m.def("conv2d_forward_f32", &forward<float>, py::arg("x").noconvert(),
        py::arg("w").noconvert(), py::arg("b").noconvert(), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("groups"), py::arg("algo"), py::arg("activation") = "none");
  m.def("conv2d_forward_f64", &forward<double>, py::arg("x").noconvert(),
        py::arg("w").noconvert(), py::arg("b").noconvert(), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("groups"), py::arg("algo"), py::arg("activation") = "none");
  m.def("conv2d_backward_f32", &backward<float>, py::arg("grad_out"), py::arg("x"), py::arg("w"),
        py::arg("has_bias"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), py::arg("need_dx"), py::arg("need_dw"), py::arg("need_db"),
        py::arg("algo"), py::arg("activation") = "none", py::arg("output") = py::none());
  m.def("conv2d_backward_f64", &backward<double>, py::arg("grad_out"), py::arg("x"), py::arg("w"),
        py::arg("has_bias"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), py::arg("need_dx"), py::arg("need_dw"), py::arg("need_db"),
        py::arg("algo"), py::arg("activation") = "none", py::arg("output") = py::none());
}
