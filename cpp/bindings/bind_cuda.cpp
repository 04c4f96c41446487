// bind_cuda.cpp — bindings of the CUDA backend's runtime (device query, owning buffers, copies,
// stream handshakes), conv2d and ReLU. cnnfast.cuda calls them with validated DeviceArrays; shapes
// are re-checked here. Without a CUDA build only cuda_built() (False) is bound.
#include "common.h"

#ifdef CNNFAST_CUDA_BUILT
#include "cnnfast/conv.h"
#include "cuda_common.h"
#endif

namespace cnnfast::py_bind {
namespace {
#ifdef CNNFAST_CUDA_BUILT

// Device memory owned by a Python object; poisoned with 0xFF bytes (NaN as float32) in tests.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(int64_t nbytes) : nbytes_(nbytes), p_(cuda::device_alloc(nbytes)) {
    if (poison_outputs()) cuda::fill_bytes(p_, 0xFF, nbytes);
  }
  ~DeviceBuffer() { cuda::device_free(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  uintptr_t ptr() const { return reinterpret_cast<uintptr_t>(p_); }
  int64_t nbytes() const { return nbytes_; }

 private:
  int64_t nbytes_;
  void* p_;
};

py::dict device_info() {
  const cuda::DeviceInfo d = cuda::device_info();
  py::dict out;
  out["found"] = d.found;
  out["count"] = d.count;
  out["device"] = d.device;
  out["name"] = d.name;
  out["compute_capability"] = py::make_tuple(d.cc_major, d.cc_minor);
  out["total_memory"] = d.total_memory;
  out["driver_version"] = d.driver_version;
  out["runtime_version"] = d.runtime_version;
  out["reason"] = d.reason;
  return out;
}

void host_array_check(const py::array& a, const char* name, bool writable) {
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": host array must be C-contiguous");
  if (writable && !a.writeable()) throw py::value_error(std::string(name) + ": read-only");
}

// ---- conv2d -------------------------------------------------------------------------------------
using Pair = std::array<int64_t, 2>;
using Quad = std::array<int64_t, 4>;

// Validated parameters from the input shape (N, C, H, W) and weight shape (K, C/groups, R, S).
Conv2dParams conv_params(const std::vector<int64_t>& xs, const std::vector<int64_t>& ws,
                         const Pair& stride, const Quad& pad, const Pair& dil, int64_t groups) {
  if (xs.size() != 4) throw py::value_error("input: expected (N, C, H, W), got " + shape_str(xs));
  if (ws.size() != 4)
    throw py::value_error("weight: expected (K, C/groups, R, S), got " + shape_str(ws));
  return conv2d_params(xs[0], xs[1], xs[2], xs[3], ws[0], ws[1], ws[2], ws[3], stride[0],
                       stride[1], pad[0], pad[1], pad[2], pad[3], dil[0], dil[1], groups);
}

void conv_fwd(py::handle y, py::handle x, py::handle w, py::handle b, Pair stride, Quad pad,
              Pair dil, int64_t groups, bool relu, const std::string& algo) {
  const ConvAlgo a = conv_algo_from_name(algo.c_str());
  const Dev xd = dev(x, "input"), wd = dev(w, "weight"), yd = dev(y, "output"),
            bd = opt_dev(b, "bias");
  const Conv2dParams p = conv_params(xd.shape, wd.shape, stride, pad, dil, groups);
  expect_shape(yd, "output", {p.N, p.K, p.P, p.Q});
  if (bd.ptr) expect_shape(bd, "bias", {p.K});
  py::gil_scoped_release nogil;
  cuda::conv2d_forward(p, yd.as<float>(), xd.as<const float>(), wd.as<const float>(),
                       bd.as<const float>(), relu, a);
}

void conv_bwd_data(py::handle dx, py::handle dy, py::handle w, Pair stride, Quad pad, Pair dil,
                   int64_t groups, const std::string& algo) {
  const ConvAlgo a = conv_algo_from_name(algo.c_str());
  const Dev dxd = dev(dx, "grad_input"), dyd = dev(dy, "grad_out"), wd = dev(w, "weight");
  const Conv2dParams p = conv_params(dxd.shape, wd.shape, stride, pad, dil, groups);
  expect_shape(dyd, "grad_out", {p.N, p.K, p.P, p.Q});
  py::gil_scoped_release nogil;
  cuda::conv2d_backward_data(p, dxd.as<float>(), dyd.as<const float>(), wd.as<const float>(), a);
}

void conv_bwd_weight(py::handle dw, py::handle db, py::handle dy, py::handle x,
                     std::vector<int64_t> w_shape, Pair stride, Quad pad, Pair dil,
                     int64_t groups, const std::string& algo) {
  const ConvAlgo a = conv_algo_from_name(algo.c_str());
  const Dev xd = dev(x, "input"), dyd = dev(dy, "grad_out");
  const Dev dwd = opt_dev(dw, "grad_weight", "float32", true);
  const Dev dbd = opt_dev(db, "grad_bias", "float32", true);
  const Conv2dParams p = conv_params(xd.shape, w_shape, stride, pad, dil, groups);
  expect_shape(dyd, "grad_out", {p.N, p.K, p.P, p.Q});
  if (dwd.ptr) expect_shape(dwd, "grad_weight", w_shape);
  if (dbd.ptr) expect_shape(dbd, "grad_bias", {p.K});
  py::gil_scoped_release nogil;
  cuda::conv2d_backward_weight(p, dwd.as<float>(), dbd.as<float>(), dyd.as<const float>(),
                               xd.as<const float>(), a);
}

// ReLU family: out = f(a, b) elementwise over arrays of one shape.
void relu_fwd(py::handle y, py::handle x) {
  const Dev yd = dev(y, "output"), xd = dev(x, "input");
  expect_shape(yd, "output", xd.shape);
  py::gil_scoped_release nogil;
  cuda::relu_forward(xd.size(), yd.as<float>(), xd.as<const float>());
}

void relu_bwd(py::handle dx, py::handle dy, py::handle saved, bool saved_is_output) {
  const Dev dxd = dev(dx, "grad_input"), dyd = dev(dy, "grad_out"),
            sd = dev(saved, saved_is_output ? "output" : "input");
  expect_shape(dyd, "grad_out", sd.shape);
  expect_shape(dxd, "grad_input", sd.shape);
  py::gil_scoped_release nogil;
  cuda::relu_backward(sd.size(), dxd.as<float>(), dyd.as<const float>(), sd.as<const float>());
}

// y (N, C, *) += b[c]; db[c] += Σ_{n, *} dy[n, c, *]
int64_t per_channel(const Dev& a, const char* name, int64_t* N, int64_t* C) {
  if (a.shape.size() < 2) throw py::value_error(std::string(name) + ": expected (N, C, ...)");
  *N = a.shape[0];
  *C = a.shape[1];
  int64_t S = 1;
  for (size_t d = 2; d < a.shape.size(); ++d) S *= a.shape[d];
  return S;
}

void bias_add(py::handle y, py::handle b) {
  const Dev yd = dev(y, "output", "float32", true), bd = dev(b, "bias");
  int64_t N, C;
  const int64_t S = per_channel(yd, "output", &N, &C);
  expect_shape(bd, "bias", {C});
  py::gil_scoped_release nogil;
  cuda::bias_add(N, C, S, yd.as<float>(), bd.as<const float>());
}

void bias_grad(py::handle db, py::handle dy) {
  const Dev dbd = dev(db, "grad_bias", "float32", true), dyd = dev(dy, "grad_out");
  int64_t N, C;
  const int64_t S = per_channel(dyd, "grad_out", &N, &C);
  expect_shape(dbd, "grad_bias", {C});
  py::gil_scoped_release nogil;
  cuda::bias_grad(N, C, S, dbd.as<float>(), dyd.as<const float>());
}

#endif  // CNNFAST_CUDA_BUILT
}  // namespace

CNNFAST_BINDINGS(cuda) {
#ifdef CNNFAST_CUDA_BUILT
  m.def("cuda_built", [] { return true; });
  py::register_exception<cuda::Error>(m, "CudaError", PyExc_RuntimeError);
  m.def("cuda_device_info", &device_info);
  py::class_<DeviceBuffer>(m, "CudaBuffer")
      .def(py::init<int64_t>(), py::arg("nbytes"))
      .def_property_readonly("ptr", &DeviceBuffer::ptr)
      .def_property_readonly("nbytes", &DeviceBuffer::nbytes);
  m.def("cuda_copy_from_host", [](uintptr_t dst, const py::array& src) {
    host_array_check(src, "source", false);
    const void* s = src.data();
    const int64_t n = src.nbytes();
    py::gil_scoped_release nogil;
    cuda::copy_to_device(reinterpret_cast<void*>(dst), s, n);
  });
  m.def("cuda_copy_to_host", [](py::array& dst, uintptr_t src) {
    host_array_check(dst, "destination", true);
    void* d = dst.mutable_data();
    const int64_t n = dst.nbytes();
    py::gil_scoped_release nogil;
    cuda::copy_to_host(d, reinterpret_cast<const void*>(src), n);
  });
  m.def("cuda_copy_on_device", [](uintptr_t dst, uintptr_t src, int64_t nbytes) {
    cuda::copy_on_device(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), nbytes);
  });
  m.def("cuda_fill_bytes", [](uintptr_t dst, int byte, int64_t nbytes) {
    cuda::fill_bytes(reinterpret_cast<void*>(dst), byte, nbytes);
  });
  m.def("cuda_synchronize", [] {
    py::gil_scoped_release nogil;
    cuda::synchronize();
  });
  m.def("cuda_wait_for_stream", &cuda::wait_for_stream, py::arg("stream"));
  m.def("cuda_publish_to_stream", &cuda::publish_to_stream, py::arg("stream"));
  // algo: "auto" | "implicit" | "winograd" | "winograd_f2" | "winograd_f4" (cuda.h)
  m.def("cuda_conv2d_forward", &conv_fwd, py::arg("y"), py::arg("x"), py::arg("w"), py::arg("b"),
        py::arg("stride"), py::arg("pad"), py::arg("dil"), py::arg("groups"), py::arg("relu"),
        py::arg("algo") = "auto");
  m.def("cuda_conv2d_backward_data", &conv_bwd_data, py::arg("dx"), py::arg("dy"), py::arg("w"),
        py::arg("stride"), py::arg("pad"), py::arg("dil"), py::arg("groups"),
        py::arg("algo") = "auto");
  m.def("cuda_conv2d_backward_weight", &conv_bwd_weight, py::arg("dw"), py::arg("db"),
        py::arg("dy"), py::arg("x"), py::arg("w_shape"), py::arg("stride"), py::arg("pad"),
        py::arg("dil"), py::arg("groups"), py::arg("algo") = "auto");
  m.def("cuda_relu_forward", &relu_fwd);
  m.def("cuda_relu_backward", &relu_bwd);
  m.def("cuda_bias_add", &bias_add);
  m.def("cuda_bias_grad", &bias_grad);
#else
  m.def("cuda_built", [] { return false; });
#endif
}

}  // namespace cnnfast::py_bind
