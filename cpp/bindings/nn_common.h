// nn_common.h — helpers for the layer-op bindings (bind_nn*.cpp): dtype dispatch, (N, C, S)
// views of arrays, writable in-place arguments, shape checks that name the argument.
#pragma once
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "cnnfast/checked.h"
#include "common.h"

namespace cnnfast::py_bind {

// Calls f(T{}) for the dtype of x (float32 / float64); TypeError otherwise.
template <class F>
auto by_dtype(const py::array& x, const char* name, F&& f) {
  if (has_dtype<float>(x)) return f(float{});
  if (has_dtype<double>(x)) return f(double{});
  throw py::type_error(std::string(name) + ": dtype must be float32 or float64");
}

struct NCS {
  int64_t N, C, S;
};

// x as (N, C, S): S is the product of the extents after the first two (1 for a 2-D x).
inline NCS ncs_of(const py::array& x, const char* name) {
  if (x.ndim() < 2) throw py::value_error(std::string(name) + ": expected at least 2-D (N, C, ...)");
  int64_t S = 1;
  for (py::ssize_t d = 2; d < x.ndim(); ++d) S = checked_mul(S, x.shape(d), name);
  return {x.shape(0), x.shape(1), S};
}

inline std::vector<int64_t> shape_of(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

inline void check_same_shape(const py::array& a, const char* an, const py::array& b,
                             const char* bn) {
  if (shape_of(a) != shape_of(b))
    throw py::value_error(std::string(an) + ": shape does not match " + bn);
}

inline void check_vec(const py::array& a, const char* name, int64_t n) {
  if (a.ndim() != 1 || a.shape(0) != n)
    throw py::value_error(std::string(name) + ": expected shape (" + std::to_string(n) + ",)");
}

// A C-contiguous, writable array of dtype T updated in place (optimizer state, running stats).
template <class T>
T* inout_ptr(const py::array& a, const char* name) {
  const T* p = in_ptr<T>(a, name);
  if (!a.writeable()) throw py::value_error(std::string(name) + ": array is read-only");
  return const_cast<T*>(p);
}

template <class T>
const T* opt_ptr(const std::optional<py::array>& a, const char* name) {
  return a ? in_ptr<T>(*a, name) : nullptr;
}

}  // namespace cnnfast::py_bind
