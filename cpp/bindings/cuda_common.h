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
inline Dev dev(const py::handle& a, const char* name, const char* dtype = "float32",
               bool writable = false) {
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
