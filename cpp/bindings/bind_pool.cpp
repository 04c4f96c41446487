// bind_pool.cpp — pooling, max-unpooling and interpolation bindings. Arrays arrive validated and
// contiguous from cnnfast.functional with 1-3 spatial dims; spatial parameters arrive as 3-tuples
// (leading dims padded with 1 / 0), so C++ sees one 3-D op. C++ re-validates sizes and indices
// and releases the GIL around every kernel.
#include <pybind11/stl.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "cnnfast/checked.h"
#include "cnnfast/pool.h"
#include "common.h"

namespace cnnfast::py_bind {
namespace {

using I3 = std::array<int64_t, 3>;

struct Spatial {
  int64_t N, C;
  int nd;
  int64_t in[3];
};

Spatial spatial_of(const py::array& x, const char* name) {
  if (x.ndim() < 3 || x.ndim() > 5)
    throw py::value_error(std::string(name) + ": expected (N, C) + 1 to 3 spatial dims");
  Spatial s{x.shape(0), x.shape(1), static_cast<int>(x.ndim() - 2), {1, 1, 1}};
  for (int d = 0; d < s.nd; ++d) s.in[3 - s.nd + d] = x.shape(2 + d);
  return s;
}

std::vector<int64_t> shape_with(const Spatial& s, const int64_t out[3]) {
  std::vector<int64_t> shape{s.N, s.C};
  for (int d = 3 - s.nd; d < 3; ++d) shape.push_back(out[d]);
  return shape;
}

PoolParams params_from(const Spatial& s, I3 kernel, I3 stride, I3 pad, I3 dil, bool ceil_mode,
                       const std::optional<I3>& adaptive_out) {
  if (adaptive_out) return adaptive_pool_params(s.N, s.C, s.in, adaptive_out->data());
  return pool_params(s.N, s.C, s.in, kernel.data(), stride.data(), pad.data(), dil.data(),
                     ceil_mode);
}

void check_same_shape(const py::array& a, const std::vector<int64_t>& shape, const char* name,
                      const char* what) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) throw py::value_error(std::string(name) + ": shape does not match " + what);
}

const int64_t* index_ptr(const py::array& idx, const std::vector<int64_t>& shape) {
  check_same_shape(idx, shape, "indices", "the pooled output");
  return in_ptr<int64_t>(idx, "indices");
}

template <class T>
py::tuple max_forward(const py::array& x, I3 kernel, I3 stride, I3 pad, I3 dil, bool ceil_mode,
                      std::optional<I3> adaptive_out, bool with_indices, PoolAlgo algo) {
  const Spatial s = spatial_of(x, "input");
  const PoolParams p = params_from(s, kernel, stride, pad, dil, ceil_mode, adaptive_out);
  const T* xp = in_ptr<T>(x, "input");
  auto y = new_output<T>(shape_with(s, p.out));
  py::object idx_obj = py::none();
  int64_t* ip = nullptr;
  if (with_indices) {
    auto idx = new_output<int64_t>(shape_with(s, p.out));
    ip = idx.mutable_data();
    idx_obj = idx;
  }
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    max_pool_forward<T>(p, yp, ip, xp, algo);
  }
  return py::make_tuple(y, idx_obj);
}

template <class T>
py::array max_backward(const py::array& dy, const py::array& x, const py::array& idx, I3 kernel,
                       I3 stride, I3 pad, I3 dil, bool ceil_mode, std::optional<I3> adaptive_out,
                       PoolAlgo algo) {
  const Spatial s = spatial_of(x, "input");
  const PoolParams p = params_from(s, kernel, stride, pad, dil, ceil_mode, adaptive_out);
  const std::vector<int64_t> out_shape = shape_with(s, p.out);
  check_same_shape(dy, out_shape, "grad_out", "the pooled output");
  const T* dyp = in_ptr<T>(dy, "grad_out");
  const int64_t* ip = index_ptr(idx, out_shape);
  auto dx = new_output<T>(shape_with(s, p.in));
  T* dxp = dx.mutable_data();
  {
    py::gil_scoped_release nogil;
    max_pool_backward<T>(p, dxp, dyp, ip, algo);
  }
  return std::move(dx);
}

template <class T>
py::array avg_forward(const py::array& x, I3 kernel, I3 stride, I3 pad, bool ceil_mode,
                      std::optional<I3> adaptive_out, bool count_include_pad,
                      int64_t divisor_override, PoolAlgo algo) {
  const Spatial s = spatial_of(x, "input");
  const PoolParams p = params_from(s, kernel, stride, pad, {1, 1, 1}, ceil_mode, adaptive_out);
  const AvgOptions o{count_include_pad, divisor_override};
  const T* xp = in_ptr<T>(x, "input");
  auto y = new_output<T>(shape_with(s, p.out));
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    avg_pool_forward<T>(p, o, yp, xp, algo);
  }
  return std::move(y);
}

template <class T>
py::array avg_backward(const py::array& dy, const py::array& x, I3 kernel, I3 stride, I3 pad,
                       bool ceil_mode, std::optional<I3> adaptive_out, bool count_include_pad,
                       int64_t divisor_override, PoolAlgo algo) {
  const Spatial s = spatial_of(x, "input");
  const PoolParams p = params_from(s, kernel, stride, pad, {1, 1, 1}, ceil_mode, adaptive_out);
  const AvgOptions o{count_include_pad, divisor_override};
  check_same_shape(dy, shape_with(s, p.out), "grad_out", "the pooled output");
  const T* dyp = in_ptr<T>(dy, "grad_out");
  auto dx = new_output<T>(shape_with(s, p.in));
  T* dxp = dx.mutable_data();
  {
    py::gil_scoped_release nogil;
    avg_pool_backward<T>(p, o, dxp, dyp, algo);
  }
  return std::move(dx);
}

template <class T>
py::array unpool_forward(const py::array& x, const py::array& idx, I3 out, PoolAlgo algo) {
  const Spatial s = spatial_of(x, "input");
  const UnpoolParams p = unpool_params(s.N * s.C, s.in, out.data());
  std::vector<int64_t> in_shape(x.shape(), x.shape() + x.ndim());
  check_same_shape(idx, in_shape, "indices", "the input to unpool");
  const int64_t* ip = in_ptr<int64_t>(idx, "indices");
  const T* xp = in_ptr<T>(x, "input");
  auto y = new_output<T>(shape_with(s, out.data()));
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    max_unpool_forward<T>(p, yp, xp, ip, algo);
  }
  return std::move(y);
}

template <class T>
py::array unpool_backward(const py::array& dy, const py::array& x, const py::array& idx, I3 out,
                          PoolAlgo algo) {
  const Spatial s = spatial_of(x, "input");
  const UnpoolParams p = unpool_params(s.N * s.C, s.in, out.data());
  std::vector<int64_t> in_shape(x.shape(), x.shape() + x.ndim());
  check_same_shape(idx, in_shape, "indices", "the input to unpool");
  check_same_shape(dy, shape_with(s, out.data()), "grad_out", "the unpooled output");
  const int64_t* ip = in_ptr<int64_t>(idx, "indices");
  const T* dyp = in_ptr<T>(dy, "grad_out");
  auto dx = new_output<T>(in_shape);
  T* dxp = dx.mutable_data();
  {
    py::gil_scoped_release nogil;
    max_unpool_backward<T>(p, dxp, dyp, ip, algo);
  }
  return std::move(dx);
}

InterpParams interp_from(const Spatial& s, I3 out, std::array<double, 3> scale,
                         const std::string& mode, bool align_corners) {
  InterpMode m;
  if (mode == "nearest") m = InterpMode::nearest;
  else if (mode == "linear") m = InterpMode::linear;
  else throw py::value_error("mode: expected 'nearest' or 'linear', got '" + mode + "'");
  InterpParams p = interp_params(s.N, s.C, s.in, out.data(), scale.data(), m, align_corners);
  p.nd = s.nd;
  return p;
}

template <class T>
py::array interp_forward(const py::array& x, I3 out, std::array<double, 3> scale,
                         const std::string& mode, bool align_corners, PoolAlgo algo) {
  const Spatial s = spatial_of(x, "input");
  const InterpParams p = interp_from(s, out, scale, mode, align_corners);
  const T* xp = in_ptr<T>(x, "input");
  auto y = new_output<T>(shape_with(s, p.out));
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    interpolate_forward<T>(p, yp, xp, algo);
  }
  return std::move(y);
}

template <class T>
py::array interp_backward(const py::array& dy, const py::array& x, I3 out,
                          std::array<double, 3> scale, const std::string& mode,
                          bool align_corners, PoolAlgo algo) {
  const Spatial s = spatial_of(x, "input");
  const InterpParams p = interp_from(s, out, scale, mode, align_corners);
  check_same_shape(dy, shape_with(s, p.out), "grad_out", "the interpolated output");
  const T* dyp = in_ptr<T>(dy, "grad_out");
  auto dx = new_output<T>(shape_with(s, p.in));
  T* dxp = dx.mutable_data();
  {
    py::gil_scoped_release nogil;
    interpolate_backward<T>(p, dxp, dyp, algo);
  }
  return std::move(dx);
}

// Runs F<float> or F<double> by the dtype of `a` (TypeError for anything else).
template <class R, class F32, class F64>
R by_dtype(const py::array& a, F32&& f32, F64&& f64) {
  if (has_dtype<float>(a)) return f32();
  if (has_dtype<double>(a)) return f64();
  throw py::type_error("input: dtype must be float32 or float64");
}

PoolAlgo algo_of(const std::string& a) { return pool_algo_from_name(a.c_str()); }

}  // namespace
}  // namespace cnnfast::py_bind

using namespace cnnfast::py_bind;

CNNFAST_BINDINGS(pool) {
  m.def("pool_max_forward", [](const py::array& x, I3 k, I3 s, I3 p, I3 d, bool ceil,
                               std::optional<I3> ad, bool with_idx, const std::string& algo) {
    return by_dtype<py::tuple>(
        x, [&] { return max_forward<float>(x, k, s, p, d, ceil, ad, with_idx, algo_of(algo)); },
        [&] { return max_forward<double>(x, k, s, p, d, ceil, ad, with_idx, algo_of(algo)); });
  });
  m.def("pool_max_backward", [](const py::array& dy, const py::array& x, const py::array& idx,
                                I3 k, I3 s, I3 p, I3 d, bool ceil, std::optional<I3> ad,
                                const std::string& algo) {
    return by_dtype<py::array>(
        x, [&] { return max_backward<float>(dy, x, idx, k, s, p, d, ceil, ad, algo_of(algo)); },
        [&] { return max_backward<double>(dy, x, idx, k, s, p, d, ceil, ad, algo_of(algo)); });
  });
  m.def("pool_avg_forward", [](const py::array& x, I3 k, I3 s, I3 p, bool ceil,
                               std::optional<I3> ad, bool include_pad, int64_t divisor,
                               const std::string& algo) {
    return by_dtype<py::array>(
        x, [&] { return avg_forward<float>(x, k, s, p, ceil, ad, include_pad, divisor, algo_of(algo)); },
        [&] { return avg_forward<double>(x, k, s, p, ceil, ad, include_pad, divisor, algo_of(algo)); });
  });
  m.def("pool_avg_backward", [](const py::array& dy, const py::array& x, I3 k, I3 s, I3 p,
                                bool ceil, std::optional<I3> ad, bool include_pad, int64_t divisor,
                                const std::string& algo) {
    return by_dtype<py::array>(
        x, [&] { return avg_backward<float>(dy, x, k, s, p, ceil, ad, include_pad, divisor, algo_of(algo)); },
        [&] { return avg_backward<double>(dy, x, k, s, p, ceil, ad, include_pad, divisor, algo_of(algo)); });
  });
  m.def("unpool_forward", [](const py::array& x, const py::array& idx, I3 out,
                             const std::string& algo) {
    return by_dtype<py::array>(x, [&] { return unpool_forward<float>(x, idx, out, algo_of(algo)); },
                               [&] { return unpool_forward<double>(x, idx, out, algo_of(algo)); });
  });
  m.def("unpool_backward", [](const py::array& dy, const py::array& x, const py::array& idx,
                              I3 out, const std::string& algo) {
    return by_dtype<py::array>(
        x, [&] { return unpool_backward<float>(dy, x, idx, out, algo_of(algo)); },
        [&] { return unpool_backward<double>(dy, x, idx, out, algo_of(algo)); });
  });
  m.def("interpolate_forward", [](const py::array& x, I3 out, std::array<double, 3> scale,
                                  const std::string& mode, bool align, const std::string& algo) {
    return by_dtype<py::array>(
        x, [&] { return interp_forward<float>(x, out, scale, mode, align, algo_of(algo)); },
        [&] { return interp_forward<double>(x, out, scale, mode, align, algo_of(algo)); });
  });
  m.def("interpolate_backward", [](const py::array& dy, const py::array& x, I3 out,
                                   std::array<double, 3> scale, const std::string& mode,
                                   bool align, const std::string& algo) {
    return by_dtype<py::array>(
        x, [&] { return interp_backward<float>(dy, x, out, scale, mode, align, algo_of(algo)); },
        [&] { return interp_backward<double>(dy, x, out, scale, mode, align, algo_of(algo)); });
  });
}
