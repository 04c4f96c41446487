// bind_nn_norm_optim.cpp — bindings of LRN, global/local contrast normalization and the in-place
// optimizer updates. Arguments arrive validated from cnnfast.functional / cnnfast.optim; sizes
// are re-checked here and the GIL is released around every kernel.
#include "cnnfast/nn.h"
#include "nn_common.h"

namespace cnnfast::py_bind {
namespace {

py::tuple lrn_fwd(const py::array& x, int64_t size, double alpha, double beta, double k) {
  const NCS d = ncs_of(x, "input");
  if (size < 1) throw py::value_error("size: must be >= 1");
  return by_dtype(x, "input", [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    const T* xp = in_ptr<T>(x, "input");
    auto y = new_output<T>(shape_of(x)), scale = new_output<T>(shape_of(x));
    T *yp = y.mutable_data(), *sp = scale.mutable_data();
    {
      py::gil_scoped_release nogil;
      lrn_forward<T>(d.N, d.C, d.S, yp, sp, xp, size, alpha, beta, k);
    }
    return py::make_tuple(y, scale);
  });
}

py::array lrn_bwd(const py::array& dy, const py::array& x, const py::array& scale, int64_t size,
                  double alpha, double beta) {
  const NCS d = ncs_of(x, "input");
  check_same_shape(dy, "grad_out", x, "input");
  check_same_shape(scale, "scale", x, "input");
  if (size < 1) throw py::value_error("size: must be >= 1");
  return by_dtype(x, "input", [&](auto tag) -> py::array {
    using T = decltype(tag);
    const T *gp = in_ptr<T>(dy, "grad_out"), *xp = in_ptr<T>(x, "input");
    const T* sp = in_ptr<T>(scale, "scale");
    auto dx = new_output<T>(shape_of(x));
    T* dp = dx.mutable_data();
    {
      py::gil_scoped_release nogil;
      lrn_backward<T>(d.N, d.C, d.S, dp, gp, xp, sp, size, alpha, beta);
    }
    return dx;
  });
}

py::array gcn_fwd(const py::array& x, double s, double lambda, double eps) {
  if (x.ndim() < 1 || x.shape(0) < 1) throw py::value_error("input: expected (N, ...)");
  const int64_t N = x.shape(0), M = x.size() / N;
  return by_dtype(x, "input", [&](auto tag) -> py::array {
    using T = decltype(tag);
    const T* xp = in_ptr<T>(x, "input");
    auto y = new_output<T>(shape_of(x));
    T* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      global_contrast_norm_forward<T>(N, M, yp, xp, s, lambda, eps);
    }
    return y;
  });
}

py::array gcn_bwd(const py::array& dy, const py::array& x, double s, double lambda, double eps) {
  check_same_shape(dy, "grad_out", x, "input");
  if (x.ndim() < 1 || x.shape(0) < 1) throw py::value_error("input: expected (N, ...)");
  const int64_t N = x.shape(0), M = x.size() / N;
  return by_dtype(x, "input", [&](auto tag) -> py::array {
    using T = decltype(tag);
    const T *gp = in_ptr<T>(dy, "grad_out"), *xp = in_ptr<T>(x, "input");
    auto dx = new_output<T>(shape_of(x));
    T* dp = dx.mutable_data();
    {
      py::gil_scoped_release nogil;
      global_contrast_norm_backward<T>(N, M, dp, gp, xp, s, lambda, eps);
    }
    return dx;
  });
}

void check_taps(const py::array& x, const py::array& taps) {
  if (x.ndim() != 4) throw py::value_error("input: expected 4-D (N, C, H, W)");
  if (taps.ndim() != 1 || taps.shape(0) % 2 != 1)
    throw py::value_error("taps: expected an odd-length 1-D window");
  if (!has_dtype<double>(taps)) throw py::type_error("taps: dtype must be float64");
}

py::array lcn_fwd(const py::array& x, const py::array& taps, bool across, double eps) {
  check_taps(x, taps);
  return by_dtype(x, "input", [&](auto tag) -> py::array {
    using T = decltype(tag);
    const T* xp = in_ptr<T>(x, "input");
    const double* tp = in_ptr<double>(taps, "taps");
    auto y = new_output<T>(shape_of(x));
    T* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      local_contrast_norm_forward<T>(x.shape(0), x.shape(1), x.shape(2), x.shape(3), yp, xp, tp,
                                     taps.shape(0) / 2, across, eps);
    }
    return y;
  });
}

py::array lcn_bwd(const py::array& dy, const py::array& x, const py::array& taps, bool across,
                  double eps) {
  check_taps(x, taps);
  check_same_shape(dy, "grad_out", x, "input");
  return by_dtype(x, "input", [&](auto tag) -> py::array {
    using T = decltype(tag);
    const T *gp = in_ptr<T>(dy, "grad_out"), *xp = in_ptr<T>(x, "input");
    const double* tp = in_ptr<double>(taps, "taps");
    auto dx = new_output<T>(shape_of(x));
    T* dp = dx.mutable_data();
    {
      py::gil_scoped_release nogil;
      local_contrast_norm_backward<T>(x.shape(0), x.shape(1), x.shape(2), x.shape(3), dp, gp, xp,
                                      tp, taps.shape(0) / 2, across, eps);
    }
    return dx;
  });
}

void sgd(const py::array& p, const py::array& g, const std::optional<py::array>& buf, double lr,
         double momentum, double dampening, double weight_decay, bool nesterov, bool first) {
  check_same_shape(g, "grad", p, "param");
  if (buf) check_same_shape(*buf, "momentum_buffer", p, "param");
  if (momentum != 0 && !buf) throw py::value_error("momentum_buffer: required when momentum != 0");
  by_dtype(p, "param", [&](auto tag) {
    using T = decltype(tag);
    T* pp = inout_ptr<T>(p, "param");
    const T* gp = in_ptr<T>(g, "grad");
    T* bp = buf ? inout_ptr<T>(*buf, "momentum_buffer") : nullptr;
    py::gil_scoped_release nogil;
    sgd_step<T>(p.size(), pp, gp, bp, lr, momentum, dampening, weight_decay, nesterov, first);
  });
}

void adam(const py::array& p, const py::array& g, const py::array& m, const py::array& v,
          const std::optional<py::array>& max_v, int64_t t, double lr, double beta1, double beta2,
          double eps, double weight_decay, bool decoupled) {
  check_same_shape(g, "grad", p, "param");
  check_same_shape(m, "exp_avg", p, "param");
  check_same_shape(v, "exp_avg_sq", p, "param");
  if (max_v) check_same_shape(*max_v, "max_exp_avg_sq", p, "param");
  if (t < 1) throw py::value_error("step: must be >= 1");
  by_dtype(p, "param", [&](auto tag) {
    using T = decltype(tag);
    T* pp = inout_ptr<T>(p, "param");
    const T* gp = in_ptr<T>(g, "grad");
    T *mp = inout_ptr<T>(m, "exp_avg"), *vp = inout_ptr<T>(v, "exp_avg_sq");
    T* xp = max_v ? inout_ptr<T>(*max_v, "max_exp_avg_sq") : nullptr;
    py::gil_scoped_release nogil;
    adam_step<T>(p.size(), pp, gp, mp, vp, xp, t, lr, beta1, beta2, eps, weight_decay, decoupled,
                 xp != nullptr);
  });
}

}  // namespace
}  // namespace cnnfast::py_bind

using namespace cnnfast::py_bind;

CNNFAST_BINDINGS(nn_norm_optim) {
  m.def("lrn_forward", &lrn_fwd);
  m.def("lrn_backward", &lrn_bwd);
  m.def("global_contrast_norm_forward", &gcn_fwd);
  m.def("global_contrast_norm_backward", &gcn_bwd);
  m.def("local_contrast_norm_forward", &lcn_fwd);
  m.def("local_contrast_norm_backward", &lcn_bwd);
  m.def("sgd_step", &sgd);
  m.def("adam_step", &adam);
}
