// bind_matmul.cpp — matmul forward/backward bindings and the private peak-FLOPS probe used by the
// benchmarks. Arguments arrive validated and contiguous from cnnfast.functional.matmul.
#include "cnnfast/matmul.h"
#include "cnnfast/peak.h"
#include "common.h"

namespace cnnfast::py_bind {
namespace {

void check_2d(const py::array& a, const py::array& b) {
  if (a.ndim() != 2 || b.ndim() != 2 || a.shape(1) != b.shape(0))
    throw py::value_error("matmul: expected a (M, K) and b (K, N)");
}

template <class T>
py::array forward(const py::array& a, const py::array& b) {
  check_2d(a, b);
  const int64_t M = a.shape(0), K = a.shape(1), N = b.shape(1);
  const T* ap = in_ptr<T>(a, "a");
  const T* bp = in_ptr<T>(b, "b");
  auto c = new_output<T>({M, N});
  T* cp = c.mutable_data();
  {
    py::gil_scoped_release nogil;
    matmul_forward<T>(M, N, K, cp, ap, bp);
  }
  return std::move(c);
}

template <class T>
py::tuple backward(const py::array& dc, const py::array& a, const py::array& b, bool need_da,
                   bool need_db) {
  check_2d(a, b);
  const int64_t M = a.shape(0), K = a.shape(1), N = b.shape(1);
  if (dc.ndim() != 2 || dc.shape(0) != M || dc.shape(1) != N)
    throw py::value_error("grad_out: shape does not match the matmul output");
  const T* dcp = in_ptr<T>(dc, "grad_out");
  const T* ap = in_ptr<T>(a, "a");
  const T* bp = in_ptr<T>(b, "b");
  py::object da = py::none(), db = py::none();
  T *dap = nullptr, *dbp = nullptr;
  if (need_da) {
    auto arr = new_output<T>({M, K});
    dap = arr.mutable_data();
    da = arr;
  }
  if (need_db) {
    auto arr = new_output<T>({K, N});
    dbp = arr.mutable_data();
    db = arr;
  }
  {
    py::gil_scoped_release nogil;
    matmul_backward<T>(M, N, K, dap, dbp, dcp, ap, bp);
  }
  return py::make_tuple(da, db);
}

double peak(int nthreads, double seconds) {
  if (nthreads < 1) throw py::value_error("nthreads must be >= 1");
  py::gil_scoped_release nogil;
  return measure_peak_gflops(nthreads, seconds);
}

}  // namespace
}  // namespace cnnfast::py_bind

using namespace cnnfast::py_bind;

CNNFAST_BINDINGS(matmul) {
  m.def("matmul_f32", &forward<float>, py::arg("a").noconvert(), py::arg("b").noconvert());
  m.def("matmul_f64", &forward<double>, py::arg("a").noconvert(), py::arg("b").noconvert());
  m.def("matmul_backward_f32", &backward<float>);
  m.def("matmul_backward_f64", &backward<double>);
  m.def("_peak_gflops", &peak, py::arg("nthreads"), py::arg("seconds") = 0.2,
        "Measured FP32 peak GFLOP/s of the active ISA's FMA loop on nthreads threads.");
}
