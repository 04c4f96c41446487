// bind_nn.cpp — bindings of the layer ops: activations, dropout, linear, batch norm, softmax and
// fused softmax + cross-entropy. Arguments arrive validated and contiguous from
// cnnfast.functional; shapes are re-checked here, outputs are fresh arrays, the GIL is released.
#include "cnnfast/nn.h"
#include "nn_common.h"

namespace cnnfast::py_bind {
namespace {

Elementwise activation_code(int act) {
  if (act < 0 || act > static_cast<int>(Elementwise::tanh))
    throw std::invalid_argument("activation: unknown code " + std::to_string(act) +
                                " (0 relu, 1 leaky_relu, 2 sigmoid, 3 tanh)");
  return Elementwise(act);
}

py::array act_forward(const py::array& x, int act, double slope) {
  const Elementwise code = activation_code(act);  // before an output is taken
  return by_dtype(x, "input", [&](auto tag) -> py::array {
    using T = decltype(tag);
    const T* xp = in_ptr<T>(x, "input");
    auto y = new_output<T>(shape_of(x));
    T* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      activation_forward<T>(code, x.size(), yp, xp, slope);
    }
    return y;
  });
}

py::array act_backward(const py::array& dy, const py::array& saved, int act, double slope) {
  const Elementwise code = activation_code(act);
  check_same_shape(dy, "grad_out", saved, "the forward input/output");
  return by_dtype(dy, "grad_out", [&](auto tag) -> py::array {
    using T = decltype(tag);
    const T* gp = in_ptr<T>(dy, "grad_out");
    const T* sp = in_ptr<T>(saved, "saved");
    auto dx = new_output<T>(shape_of(dy));
    T* dp = dx.mutable_data();
    {
      py::gil_scoped_release nogil;
      activation_backward<T>(code, dy.size(), dp, gp, sp, slope);
    }
    return dx;
  });
}

double sq_err_sum(const py::array& x, const py::array& t) {
  check_same_shape(t, "target", x, "input");
  return by_dtype(x, "input", [&](auto tag) -> double {
    using T = decltype(tag);
    const T* xp = in_ptr<T>(x, "input");
    const T* tp = in_ptr<T>(t, "target");
    py::gil_scoped_release nogil;
    return squared_error_sum<T>(x.size(), xp, tp);
  });
}

py::array sq_err_grad(const py::array& x, const py::array& t, double scale) {
  check_same_shape(t, "target", x, "input");
  return by_dtype(x, "input", [&](auto tag) -> py::array {
    using T = decltype(tag);
    const T* xp = in_ptr<T>(x, "input");
    const T* tp = in_ptr<T>(t, "target");
    auto dx = new_output<T>(shape_of(x));
    T* dp = dx.mutable_data();
    {
      py::gil_scoped_release nogil;
      squared_error_grad<T>(x.size(), dp, xp, tp, T(scale));
    }
    return dx;
  });
}

py::array dropout(const py::array& x, const py::array& mask, int64_t inner, double scale) {
  if (inner < 1 || checked_mul(mask.size(), inner, "mask size") != x.size())
    throw py::value_error("mask: size times inner must equal the input size");
  if (!has_dtype<uint8_t>(mask)) throw py::type_error("mask: dtype must be uint8");
  const uint8_t* mp = in_ptr<uint8_t>(mask, "mask");
  return by_dtype(x, "input", [&](auto tag) -> py::array {
    using T = decltype(tag);
    const T* xp = in_ptr<T>(x, "input");
    auto y = new_output<T>(shape_of(x));
    T* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      dropout_apply<T>(mask.size(), inner, yp, xp, mp, T(scale));
    }
    return y;
  });
}

py::array lin_forward(const py::array& x, const py::array& w, const std::optional<py::array>& b) {
  if (x.ndim() != 2 || w.ndim() != 2 || x.shape(1) != w.shape(1))
    throw py::value_error("linear: expected input (N, in) and weight (out, in)");
  const int64_t N = x.shape(0), in = x.shape(1), out = w.shape(0);
  checked_mul(N, out, "linear output size");
  if (b) check_vec(*b, "bias", out);
  return by_dtype(x, "input", [&](auto tag) -> py::array {
    using T = decltype(tag);
    const T *xp = in_ptr<T>(x, "input"), *wp = in_ptr<T>(w, "weight"), *bp = opt_ptr<T>(b, "bias");
    auto y = new_output<T>({N, out});
    T* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      linear_forward<T>(N, in, out, yp, xp, wp, bp);
    }
    return y;
  });
}

// dw_into / db_into (optional): existing gradients (out, in) / (out,) to add into in place, as a
// layer's parameter .grad — no fresh zeroed array and no second pass over a 400 MB classifier
// weight (VGG's first fully connected layer); they are returned as the gradients. Without one,
// a fresh zeroed array (the GEMM accumulates). Sets `out` to the array written.
template <class T>
T* accumulated_grad(const std::optional<py::array>& into, const char* name,
                    const std::vector<int64_t>& shape, py::object& out) {
  if (!into) {
    auto a = new_output<T>(shape, /*zero=*/true);
    out = a;
    return a.mutable_data();
  }
  const T* p = in_ptr<T>(*into, name);
  if (!into->writeable()) throw py::value_error(std::string(name) + ": read-only");
  bool same = into->ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; same && i < shape.size(); ++i) same = into->shape(i) == shape[i];
  if (!same) throw py::value_error(std::string(name) + ": shape does not match the gradient");
  out = *into;
  return const_cast<T*>(p);
}

py::tuple lin_backward(const py::array& dy, const py::array& x, const py::array& w, bool has_bias,
                       bool need_dx, bool need_dw, bool need_db,
                       const std::optional<py::array>& dw_into,
                       const std::optional<py::array>& db_into) {
  if (x.ndim() != 2 || w.ndim() != 2 || x.shape(1) != w.shape(1))
    throw py::value_error("linear: expected input (N, in) and weight (out, in)");
  const int64_t N = x.shape(0), in = x.shape(1), out = w.shape(0);
  if (dy.ndim() != 2 || dy.shape(0) != N || dy.shape(1) != out)
    throw py::value_error("grad_out: expected shape (N, out)");
  return by_dtype(x, "input", [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    const T *gp = in_ptr<T>(dy, "grad_out"), *xp = in_ptr<T>(x, "input"), *wp = in_ptr<T>(w, "weight");
    py::object dx = py::none(), dw = py::none(), db = py::none();
    T *dxp = nullptr, *dwp = nullptr, *dbp = nullptr;
    if (need_dx) { auto a = new_output<T>({N, in}); dxp = a.mutable_data(); dx = a; }
    if (need_dw) dwp = accumulated_grad<T>(dw_into, "grad_weight_into", {out, in}, dw);
    if (need_db && has_bias) dbp = accumulated_grad<T>(db_into, "grad_bias_into", {out}, db);
    {
      py::gil_scoped_release nogil;
      linear_backward<T>(N, in, out, dxp, dwp, dbp, gp, xp, wp);
    }
    return py::make_tuple(dx, dw, db);
  });
}

using OptArr = std::optional<py::array>;

py::tuple bn_forward(const py::array& x, const OptArr& gamma, const OptArr& beta,
                     const OptArr& running_mean, const OptArr& running_var, bool training,
                     double momentum, double eps) {
  const NCS d = ncs_of(x, "input");
  for (auto [a, name] : {std::pair{&gamma, "weight"}, {&beta, "bias"},
                         {&running_mean, "running_mean"}, {&running_var, "running_var"}})
    if (*a) check_vec(**a, name, d.C);
  if (!training && (!running_mean || !running_var))
    throw py::value_error("batch_norm: eval mode needs running_mean and running_var");
  return by_dtype(x, "input", [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    const T* xp = in_ptr<T>(x, "input");
    const T *gp = opt_ptr<T>(gamma, "weight"), *bp = opt_ptr<T>(beta, "bias");
    // Updated in place in training; only read in eval (read-only or memory-mapped buffers).
    auto stats = [&](const OptArr& a, const char* name) -> T* {
      if (!a) return nullptr;
      return training ? inout_ptr<T>(*a, name) : const_cast<T*>(in_ptr<T>(*a, name));
    };
    T *rm = stats(running_mean, "running_mean"), *rv = stats(running_var, "running_var");
    auto y = new_output<T>(shape_of(x));
    auto mean = new_output<T>({d.C}), invstd = new_output<T>({d.C});
    T *yp = y.mutable_data(), *mp = mean.mutable_data(), *ip = invstd.mutable_data();
    {
      py::gil_scoped_release nogil;
      batch_norm_forward<T>(d.N, d.C, d.S, yp, mp, ip, xp, gp, bp, rm, rv, training, momentum, eps);
    }
    return py::make_tuple(y, mean, invstd);
  });
}

py::tuple bn_backward(const py::array& dy, const py::array& x, const OptArr& gamma,
                      const py::array& save_mean, const py::array& save_invstd, bool training,
                      bool need_dx, bool need_dgamma, bool need_dbeta) {
  const NCS d = ncs_of(x, "input");
  check_same_shape(dy, "grad_out", x, "input");
  check_vec(save_mean, "save_mean", d.C);
  check_vec(save_invstd, "save_invstd", d.C);
  if (gamma) check_vec(*gamma, "weight", d.C);
  return by_dtype(x, "input", [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    const T *gp = in_ptr<T>(dy, "grad_out"), *xp = in_ptr<T>(x, "input");
    const T* wp = opt_ptr<T>(gamma, "weight");
    const T *mp = in_ptr<T>(save_mean, "save_mean"), *ip = in_ptr<T>(save_invstd, "save_invstd");
    py::object dx = py::none(), dg = py::none(), db = py::none();
    T *dxp = nullptr, *dgp = nullptr, *dbp = nullptr;
    if (need_dx) { auto a = new_output<T>(shape_of(x)); dxp = a.mutable_data(); dx = a; }
    if (need_dgamma) { auto a = new_output<T>({d.C}, true); dgp = a.mutable_data(); dg = a; }
    if (need_dbeta) { auto a = new_output<T>({d.C}, true); dbp = a.mutable_data(); db = a; }
    {
      py::gil_scoped_release nogil;
      batch_norm_backward<T>(d.N, d.C, d.S, dxp, dgp, dbp, gp, xp, wp, mp, ip, training);
    }
    return py::make_tuple(dx, dg, db);
  });
}

py::array sm_forward(const py::array& x, bool log) {
  const NCS d = ncs_of(x, "input");
  return by_dtype(x, "input", [&](auto tag) -> py::array {
    using T = decltype(tag);
    const T* xp = in_ptr<T>(x, "input");
    auto y = new_output<T>(shape_of(x));
    T* yp = y.mutable_data();
    {
      py::gil_scoped_release nogil;
      softmax_forward<T>(d.N, d.C, d.S, yp, xp, log);
    }
    return y;
  });
}

py::array sm_backward(const py::array& dy, const py::array& y, bool log) {
  const NCS d = ncs_of(y, "output");
  check_same_shape(dy, "grad_out", y, "output");
  return by_dtype(y, "output", [&](auto tag) -> py::array {
    using T = decltype(tag);
    const T *gp = in_ptr<T>(dy, "grad_out"), *yp = in_ptr<T>(y, "output");
    auto dx = new_output<T>(shape_of(y));
    T* dp = dx.mutable_data();
    {
      py::gil_scoped_release nogil;
      softmax_backward<T>(d.N, d.C, d.S, dp, gp, yp, log);
    }
    return dx;
  });
}

// target is (N, ...) int64 with N·S items matching logits (N, C, ...).
void check_target(const NCS& d, const py::array& target) {
  if (!has_dtype<int64_t>(target)) throw py::type_error("target: dtype must be int64");
  if (target.size() != d.N * d.S) throw py::value_error("target: expected one class per item");
}

py::tuple ce_forward(const py::array& z, const py::array& target, const OptArr& weight,
                     int64_t ignore_index, double smoothing) {
  const NCS d = ncs_of(z, "input");
  check_target(d, target);
  if (weight) check_vec(*weight, "weight", d.C);
  return by_dtype(z, "input", [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    const T *zp = in_ptr<T>(z, "input"), *wp = opt_ptr<T>(weight, "weight");
    const int64_t* tp = in_ptr<int64_t>(target, "target");
    auto loss = new_output<T>(shape_of(target)), lse = new_output<T>(shape_of(target));
    T *lp = loss.mutable_data(), *sp = lse.mutable_data();
    {
      py::gil_scoped_release nogil;
      cross_entropy_forward<T>(d.N, d.C, d.S, lp, sp, zp, tp, wp, ignore_index, smoothing);
    }
    return py::make_tuple(loss, lse);
  });
}

py::array ce_backward(const py::array& item_grad, const py::array& z, const py::array& lse,
                      const py::array& target, const OptArr& weight, int64_t ignore_index,
                      double smoothing) {
  const NCS d = ncs_of(z, "input");
  check_target(d, target);
  check_same_shape(item_grad, "item_grad", target, "target");
  check_same_shape(lse, "lse", target, "target");
  if (weight) check_vec(*weight, "weight", d.C);
  return by_dtype(z, "input", [&](auto tag) -> py::array {
    using T = decltype(tag);
    const T *zp = in_ptr<T>(z, "input"), *wp = opt_ptr<T>(weight, "weight");
    const T *gp = in_ptr<T>(item_grad, "item_grad"), *lp = in_ptr<T>(lse, "lse");
    const int64_t* tp = in_ptr<int64_t>(target, "target");
    auto dz = new_output<T>(shape_of(z));
    T* dp = dz.mutable_data();
    {
      py::gil_scoped_release nogil;
      cross_entropy_backward<T>(d.N, d.C, d.S, dp, gp, zp, lp, tp, wp, ignore_index, smoothing);
    }
    return dz;
  });
}

}  // namespace
}  // namespace cnnfast::py_bind

using namespace cnnfast::py_bind;

CNNFAST_BINDINGS(nn) {
  m.def("activation_forward", &act_forward);
  m.def("activation_backward", &act_backward);
  m.def("dropout_apply", &dropout);
  m.def("squared_error_sum", &sq_err_sum);
  m.def("squared_error_grad", &sq_err_grad);
  m.def("linear_forward", &lin_forward);
  m.def("linear_backward", &lin_backward, py::arg("grad_out"), py::arg("x"), py::arg("w"),
        py::arg("has_bias"), py::arg("need_dx"), py::arg("need_dw"), py::arg("need_db"),
        py::arg("dw_into") = py::none(), py::arg("db_into") = py::none());
  m.def("batch_norm_forward", &bn_forward);
  m.def("batch_norm_backward", &bn_backward);
  m.def("softmax_forward", &sm_forward);
  m.def("softmax_backward", &sm_backward);
  m.def("cross_entropy_forward", &ce_forward);
  m.def("cross_entropy_backward", &ce_backward);
}
