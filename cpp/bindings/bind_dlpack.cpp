// bind_dlpack.cpp — DLPack capsules for cnnfast.cuda. Host-side bookkeeping only (no CUDA call),
// so it is built and tested with or without the CUDA backend. Export: a "dltensor" capsule whose
// DLManagedTensor keeps the exporting Python object alive until the consumer's deleter runs.
// Import: a producer's "dltensor" capsule is renamed "used_dltensor" (consumed) and the producer's
// deleter runs when the returned holder is garbage-collected. Structs: DLPack's stable ABI
// (dlpack.h 0.8: DLDevice, DLDataType, DLTensor, DLManagedTensor).
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common.h"

namespace cnnfast::py_bind {
namespace {

struct DLDevice {
  int32_t device_type;  // 1 CPU, 2 CUDA, 3 CUDA host (pinned), 13 CUDA managed
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;  // 0 int, 1 uint, 2 float, 6 bool
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; null: C-contiguous
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

struct Export {
  DLManagedTensor managed{};
  std::vector<int64_t> shape, strides;
  PyObject* owner = nullptr;  // a strong reference
};

void delete_export(DLManagedTensor* t) {
  auto* e = static_cast<Export*>(t->manager_ctx);
  if (Py_IsInitialized()) {  // consumers may call this from any thread
    const PyGILState_STATE s = PyGILState_Ensure();
    Py_XDECREF(e->owner);
    PyGILState_Release(s);
  }
  delete e;
}

void export_capsule_destructor(PyObject* cap) {
  if (!PyCapsule_IsValid(cap, "dltensor")) return;  // consumed ("used_dltensor"): not ours
  auto* t = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
  if (t && t->deleter) t->deleter(t);
}

py::object dlpack_export(uintptr_t ptr, std::vector<int64_t> shape,
                         std::optional<std::vector<int64_t>> strides, int code, int bits,
                         int device_type, int device_id, py::object owner) {
  if (strides && strides->size() != shape.size())
    throw py::value_error("strides: expected one per dimension");
  if (code < 0 || code > 255 || bits < 1 || bits > 255)
    throw py::value_error("dtype: invalid DLPack code/bits");
  auto* e = new Export;
  e->shape = std::move(shape);
  if (strides) e->strides = std::move(*strides);
  e->owner = owner.release().ptr();
  DLTensor& t = e->managed.dl_tensor;
  t.data = reinterpret_cast<void*>(ptr);
  t.device = {device_type, device_id};
  t.ndim = static_cast<int32_t>(e->shape.size());
  t.dtype = {static_cast<uint8_t>(code), static_cast<uint8_t>(bits), 1};
  t.shape = e->shape.data();
  t.strides = strides ? e->strides.data() : nullptr;
  t.byte_offset = 0;
  e->managed.manager_ctx = e;
  e->managed.deleter = &delete_export;
  PyObject* cap = PyCapsule_New(&e->managed, "dltensor", &export_capsule_destructor);
  if (!cap) {
    delete_export(&e->managed);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::object>(cap);
}

// Owns a consumed producer tensor: its deleter runs when this object dies.
class DLPackImport {
 public:
  explicit DLPackImport(DLManagedTensor* t) : t_(t) {}
  ~DLPackImport() {
    if (t_ && t_->deleter) t_->deleter(t_);
  }
  DLPackImport(const DLPackImport&) = delete;
  DLPackImport& operator=(const DLPackImport&) = delete;

 private:
  DLManagedTensor* t_;
};

// (holder, data pointer incl. byte_offset, shape, strides in elements or None,
//  (code, bits, lanes), (device_type, device_id)); the capsule is consumed.
py::tuple dlpack_import(const py::object& capsule) {
  PyObject* cap = capsule.ptr();
  if (PyCapsule_IsValid(cap, "used_dltensor"))
    throw py::value_error("from_dlpack: this DLPack capsule was already consumed");
  if (!PyCapsule_IsValid(cap, "dltensor"))
    throw py::type_error("from_dlpack: expected a DLPack capsule named 'dltensor'");
  auto* t = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
  const DLTensor& d = t->dl_tensor;
  if (d.ndim < 0 || (d.ndim > 0 && !d.shape))
    throw py::value_error("from_dlpack: malformed DLTensor (ndim/shape)");
  if (d.dtype.lanes != 1)
    throw py::type_error("from_dlpack: vector dtypes (lanes > 1) are not supported");
  std::vector<int64_t> shape(d.shape, d.shape + d.ndim);
  py::object strides = py::none();
  if (d.strides && d.ndim > 0)
    strides = py::cast(std::vector<int64_t>(d.strides, d.strides + d.ndim));
  const uintptr_t ptr = reinterpret_cast<uintptr_t>(d.data) + d.byte_offset;
  // From here on nothing throws before the holder owns t.
  py::object holder = py::cast(new DLPackImport(t), py::return_value_policy::take_ownership);
  PyCapsule_SetName(cap, "used_dltensor");
  return py::make_tuple(holder, ptr, shape, strides,
                        py::make_tuple(int(d.dtype.code), int(d.dtype.bits), int(d.dtype.lanes)),
                        py::make_tuple(int(d.device.device_type), int(d.device.device_id)));
}

}  // namespace

CNNFAST_BINDINGS(dlpack) {
  py::class_<DLPackImport>(m, "_DLPackImport");
  m.def("dlpack_export", &dlpack_export, py::arg("ptr"), py::arg("shape"), py::arg("strides"),
        py::arg("code"), py::arg("bits"), py::arg("device_type"), py::arg("device_id"),
        py::arg("owner"));
  m.def("dlpack_import", &dlpack_import, py::arg("capsule"));
}

}  // namespace cnnfast::py_bind
