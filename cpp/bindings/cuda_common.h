// cuda_common.h — how the CUDA bindings see a cnnfast.cuda.DeviceArray: its device address,
// shape and dtype, read from the Python object and re-checked here (dtype, C-contiguity,
// alignment, writability, shapes), so a bug above can not make a kernel read out of bounds.
#pragma once
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnfast/checked.h"
#include "cnnfast/cuda.h"
#include "common.h"

namespace cnnfast::py_bind {

struct Dev {
  uintptr_t ptr = 0;  // 0 for an absent optional argument
  std::vector<int64_t> shape;
  int64_t size() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  template <class T>
  T* as() const {
    return reinterpret_cast<T*>(ptr);
  }
};

// dtype is "float32" or "int64"; writable: the kernel updates it in place.
// The fast path for cnnfast's own DeviceArray: its slots (_dtype is one of NumPy's dtype
// singletons, _strides None when C-contiguous) instead of the Python properties.
inline bool dev_fast(const py::handle& a, const char* dtype, bool writable, Dev& d) {
  static const py::handle f32 = py::dtype::of<float>().release();
  static const py::handle i64 = py::dtype::of<int64_t>().release();
  static const py::handle cls = [] {
    py::object c = py::module_::import("cnnfast.cuda._array").attr("DeviceArray");
    return c.release();
  }();
  if (!a || Py_TYPE(a.ptr()) != reinterpret_cast<PyTypeObject*>(cls.ptr())) return false;
  const py::handle want = dtype[0] == 'f' ? f32 : i64;
  if (a.attr("_dtype").ptr() != want.ptr() || !a.attr("_strides").is_none()) return false;
  if (writable && a.attr("_readonly").cast<bool>()) return false;
  const py::tuple shape = a.attr("_shape");
  d.shape.resize(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) d.shape[i] = shape[i].cast<int64_t>();
  d.ptr = a.attr("_ptr").cast<uintptr_t>();
  return true;  // _make already checked the extents; alignment and null below as for any array
}

inline Dev dev(const py::handle& a, const char* name, const char* dtype = "float32",
               bool writable = false) {
  Dev fast;
  if (dev_fast(a, dtype, writable, fast)) {
    int64_t count = 1;
    for (int64_t e : fast.shape) count = checked_mul(count, e, name);
    const uintptr_t align = dtype[0] == 'f' ? 4 : 8;
    if (fast.ptr % align == 0 && (fast.ptr != 0 || count == 0)) return fast;
  }
  const std::string n(name);
  if (a.is_none() || !py::hasattr(a, "_cnnfast_device_array"))
    throw py::type_error(n + ": expected a cnnfast.cuda.DeviceArray");
  const std::string dt = py::str(a.attr("dtype").attr("name"));
  if (dt != dtype) throw py::type_error(n + ": dtype must be " + dtype + ", got " + dt);
  if (!a.attr("is_c_contiguous").cast<bool>())
    throw py::value_error(n + ": device array must be C-contiguous");
  if (writable && a.attr("readonly").cast<bool>())
    throw py::value_error(n + ": device array is read-only (updated in place)");
  Dev d;
  d.shape = a.attr("shape").cast<std::vector<int64_t>>();
  d.ptr = a.attr("data_ptr").cast<uintptr_t>();
  int64_t count = 1;  // the product of the extents must fit in int64
  for (int64_t e : d.shape) {
    if (e < 0) throw py::value_error(n + ": negative dimension");
    count = checked_mul(count, e, name);
  }
  const uintptr_t align = dt == "int64" ? 8 : 4;
  if (d.ptr % align != 0) throw py::value_error(n + ": device pointer is not aligned to its dtype");
  if (d.ptr == 0 && d.size() > 0) throw py::value_error(n + ": null device pointer");
  return d;
}

inline Dev opt_dev(const py::handle& a, const char* name, const char* dtype = "float32",
                   bool writable = false) {
  return a.is_none() ? Dev{} : dev(a, name, dtype, writable);
}

inline std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

inline void expect_shape(const Dev& a, const char* name, const std::vector<int64_t>& want) {
  if (a.shape != want)
    throw py::value_error(std::string(name) + ": expected shape " + shape_str(want) + ", got " +
                          shape_str(a.shape));
}

}  // namespace cnnfast::py_bind
