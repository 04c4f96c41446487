// bind_cuda_conv3d.cpp — bindings of the CUDA conv3d kernels (cuda.h, conv3d.cu) on DeviceArrays,
// and their host-emulation test hooks (`_cuda_emulate_conv3d_*`, NumPy float32 arrays). The
// geometry goes through the CPU's conv3d_params validator; shapes are re-checked here.
#include "common.h"

#ifdef CNNFAST_CUDA_BUILT
#include <array>

#include "cnnfast/conv_family.h"
#include "cuda_common.h"

namespace cnnfast::py_bind {
namespace {

using Triple = std::array<int64_t, 3>;
using Six = std::array<int64_t, 6>;

// Validated parameters from x (N, C, D, H, W) and w (K, C/groups, KD, KH, KW).
Conv3dParams params3(const std::vector<int64_t>& xs, const std::vector<int64_t>& ws,
                     const Triple& st, const Six& pad, const Triple& dil, int64_t groups) {
  if (xs.size() != 5)
    throw py::value_error("input: expected (N, C, D, H, W), got " + shape_str(xs));
  if (ws.size() != 5)
    throw py::value_error("weight: expected (K, C/groups, KD, KH, KW), got " + shape_str(ws));
  return conv3d_params(xs[0], xs[1], xs[2], xs[3], xs[4], ws[0], ws[1], ws[2], ws[3], ws[4],
                       st.data(), pad.data(), dil.data(), groups);
}

std::vector<int64_t> out_shape(const Conv3dParams& p) { return {p.N, p.K, p.OD, p.OH, p.OW}; }

void fwd(py::handle y, py::handle x, py::handle w, py::handle b, Triple st, Six pad, Triple dil,
         int64_t groups, bool relu) {
  const Dev xd = dev(x, "input"), wd = dev(w, "weight"), yd = dev(y, "output"),
            bd = opt_dev(b, "bias");
  const Conv3dParams p = params3(xd.shape, wd.shape, st, pad, dil, groups);
  expect_shape(yd, "output", out_shape(p));
  if (bd.ptr) expect_shape(bd, "bias", {p.K});
  py::gil_scoped_release nogil;
  cuda::conv3d_forward(p, yd.as<float>(), xd.as<const float>(), wd.as<const float>(),
                       bd.as<const float>(), relu);
}

void bwd_data(py::handle dx, py::handle dy, py::handle w, Triple st, Six pad, Triple dil,
              int64_t groups) {
  const Dev dxd = dev(dx, "grad_input"), dyd = dev(dy, "grad_out"), wd = dev(w, "weight");
  const Conv3dParams p = params3(dxd.shape, wd.shape, st, pad, dil, groups);
  expect_shape(dyd, "grad_out", out_shape(p));
  py::gil_scoped_release nogil;
  cuda::conv3d_backward_data(p, dxd.as<float>(), dyd.as<const float>(), wd.as<const float>());
}

void bwd_weight(py::handle dw, py::handle db, py::handle dy, py::handle x,
                std::vector<int64_t> w_shape, Triple st, Six pad, Triple dil, int64_t groups) {
  const Dev xd = dev(x, "input"), dyd = dev(dy, "grad_out");
  const Dev dwd = opt_dev(dw, "grad_weight", "float32", true);
  const Dev dbd = opt_dev(db, "grad_bias", "float32", true);
  const Conv3dParams p = params3(xd.shape, w_shape, st, pad, dil, groups);
  expect_shape(dyd, "grad_out", out_shape(p));
  if (dwd.ptr) expect_shape(dwd, "grad_weight", w_shape);
  if (dbd.ptr) expect_shape(dbd, "grad_bias", {p.K});
  py::gil_scoped_release nogil;
  cuda::conv3d_backward_weight(p, dwd.as<float>(), dbd.as<float>(), dyd.as<const float>(),
                               xd.as<const float>());
}

// ---- host emulation -------------------------------------------------------------------------------
std::vector<int64_t> shape_of(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

py::array emu_fwd(const py::array& x, const py::array& w, std::optional<py::array> b, Triple st,
                  Six pad, Triple dil, int64_t groups, bool relu) {
  const Conv3dParams p = params3(shape_of(x), shape_of(w), st, pad, dil, groups);
  auto y = new_output<float>(out_shape(p));
  cuda::emulate::conv3d_forward(p, y.mutable_data(), in_ptr<float>(x, "input"),
                                in_ptr<float>(w, "weight"),
                                b ? in_ptr<float>(*b, "bias") : nullptr, relu);
  return y;
}

py::array emu_bwd_data(const py::array& dy, const py::array& w, std::vector<int64_t> x_shape,
                       Triple st, Six pad, Triple dil, int64_t groups) {
  const Conv3dParams p = params3(x_shape, shape_of(w), st, pad, dil, groups);
  if (shape_of(dy) != out_shape(p)) throw py::value_error("grad_out: wrong shape");
  auto dx = new_output<float>(x_shape);
  cuda::emulate::conv3d_backward_data(p, dx.mutable_data(), in_ptr<float>(dy, "grad_out"),
                                      in_ptr<float>(w, "weight"));
  return dx;
}

py::array emu_bwd_weight(const py::array& dy, const py::array& x, std::vector<int64_t> w_shape,
                         Triple st, Six pad, Triple dil, int64_t groups, int multiprocessors) {
  const Conv3dParams p = params3(shape_of(x), w_shape, st, pad, dil, groups);
  if (shape_of(dy) != out_shape(p)) throw py::value_error("grad_out: wrong shape");
  auto dw = new_output<float>(w_shape, /*zero=*/true);
  cuda::emulate::conv3d_backward_weight(p, dw.mutable_data(), in_ptr<float>(dy, "grad_out"),
                                        in_ptr<float>(x, "input"), multiprocessors);
  return dw;
}

}  // namespace

CNNFAST_BINDINGS(cuda_conv3d) {
  m.def("cuda_conv3d_forward", &fwd);
  m.def("cuda_conv3d_backward_data", &bwd_data);
  m.def("cuda_conv3d_backward_weight", &bwd_weight);
  m.def("_cuda_emulate_conv3d_forward", &emu_fwd);
  m.def("_cuda_emulate_conv3d_backward_data", &emu_bwd_data);
  m.def("_cuda_emulate_conv3d_backward_weight", &emu_bwd_weight);
}

}  // namespace cnnfast::py_bind
#endif
