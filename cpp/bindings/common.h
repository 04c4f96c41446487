// common.h — helpers shared by the binding files: typed array access without silent copies,
// output allocation (optionally poisoned with NaN so tests catch unwritten elements).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace cnnfast::py_bind {
namespace py = pybind11;

bool& poison_outputs();  // debug switch: fill fresh outputs with NaN before kernels run

// Whether a's dtype is T's: an equivalent dtype, not necessarily the same object (an unpickled
// array's float32 is a dtype equal to np.float32 but another instance; byte-swapped is not T).
template <class T>
bool has_dtype(const py::array& a) {
  return py::isinstance<py::array_t<T>>(a);
}

// Returns the data pointer of a C-contiguous array of dtype T; TypeError/ValueError otherwise.
// The Python layer makes arrays contiguous explicitly, so this never copies.
template <class T>
const T* in_ptr(const py::array& a, const char* name) {
  if (!has_dtype<T>(a)) throw py::type_error(std::string(name) + ": dtype mismatch");
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": array must be C-contiguous");
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0)
    throw py::value_error(std::string(name) + ": array data must be aligned to its dtype");
  return static_cast<const T*>(a.data());
}

// Large-output memory recycling (output_cache.cpp): blocks of `bytes` (a page multiple).
void* output_block_take(size_t bytes);
void output_block_give(void* p, size_t bytes);
size_t output_cache_bytes();

template <class T>
py::array_t<T> new_output(const std::vector<int64_t>& shape, bool zero = false) {
  constexpr size_t kPage = 4096, kHeader = 64, kMinCached = size_t(1) << 20;
  size_t count = 1;
  for (int64_t d : shape) count *= static_cast<size_t>(d);  // validated sizes (no overflow)
  const std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  py::array_t<T> out;
  if (count * sizeof(T) >= kMinCached) {
    // A recycled block: its size sits in a header before the data; the array's base capsule
    // gives the block back to the cache when the array dies.
    const size_t block = (count * sizeof(T) + kHeader + kPage - 1) / kPage * kPage;
    char* base = static_cast<char*>(output_block_take(block));
    *reinterpret_cast<size_t*>(base) = block;
    py::capsule owner(base + kHeader, [](void* data) {
      char* b = static_cast<char*>(data) - kHeader;
      output_block_give(b, *reinterpret_cast<size_t*>(b));
    });
    out = py::array_t<T>(dims, reinterpret_cast<T*>(base + kHeader), owner);
  } else {
    out = py::array_t<T>(dims);
  }
  T* p = out.mutable_data();
  const T fill = zero ? T(0) : std::numeric_limits<T>::quiet_NaN();
  if (zero || poison_outputs()) std::fill(p, p + out.size(), fill);
  return out;
}

// Self-registration: each binding file adds its op family with
//   CNNFAST_BINDINGS(conv) { m.def(...); }
// so adding an op family never edits module.cpp.
using BindFn = void (*)(py::module_&);
int register_bindings(const char* family, BindFn fn);
void bind_all(py::module_& m);

}  // namespace cnnfast::py_bind

#define CNNFAST_BINDINGS(family)                                                         \
  static void cnnfast_bind_##family(pybind11::module_& m);                               \
  static const int cnnfast_registered_##family =                                          \
      ::cnnfast::py_bind::register_bindings(#family, &cnnfast_bind_##family);             \
  static void cnnfast_bind_##family(pybind11::module_& m)
