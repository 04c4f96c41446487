// bind_cuda_ops.cpp — bindings of the CUDA pooling, max-unpooling, batch norm, softmax
// cross-entropy and optimizer kernels, and the elementwise helpers of the layer API's device
// path (scaled add, grouped product, dropout mask, argmax-accuracy count) (see bind_cuda.cpp for the runtime and conv2d). Parameters
// are validated by the same C++ validators as the CPU ops; shapes are re-checked here.
#include "common.h"

#ifdef CNNFAST_CUDA_BUILT
#include <optional>

#include "cnnfast/pool.h"
#include "cuda_common.h"

namespace cnnfast::py_bind {
namespace {

using Triple = std::array<int64_t, 3>;

// x (N, C, *spatial) with 1..3 spatial dims; the 3-D core's input extents (leading 1s).
struct Planes {
  int64_t N, C;
  int64_t in[3];
  size_t nd;
};
Planes planes_of(const Dev& x, const char* name) {
  if (x.shape.size() < 3 || x.shape.size() > 5)
    throw py::value_error(std::string(name) + ": expected (N, C) + 1 to 3 spatial dims, got " +
                          shape_str(x.shape));
  Planes p{x.shape[0], x.shape[1], {1, 1, 1}, x.shape.size() - 2};
  for (size_t d = 0; d < p.nd; ++d) p.in[3 - p.nd + d] = x.shape[2 + d];
  return p;
}

PoolParams pool_of(const Planes& x, const Triple& k, const Triple& s, const Triple& pad,
                   const Triple& dil, bool ceil_mode, const std::optional<Triple>& out) {
  if (out) return adaptive_pool_params(x.N, x.C, x.in, out->data());
  return pool_params(x.N, x.C, x.in, k.data(), s.data(), pad.data(), dil.data(), ceil_mode);
}

std::vector<int64_t> pooled_shape(const Planes& x, const PoolParams& p) {
  std::vector<int64_t> s{x.N, x.C};
  for (size_t d = 3 - x.nd; d < 3; ++d) s.push_back(p.out[d]);
  return s;
}

void max_pool_fwd(py::handle y, py::handle idx, py::handle x, Triple k, Triple s, Triple pad,
                  Triple dil, bool ceil_mode, std::optional<Triple> out) {
  const Dev xd = dev(x, "input"), yd = dev(y, "output"), id = opt_dev(idx, "indices", "int64");
  const Planes pl = planes_of(xd, "input");
  const PoolParams p = pool_of(pl, k, s, pad, dil, ceil_mode, out);
  expect_shape(yd, "output", pooled_shape(pl, p));
  if (id.ptr) expect_shape(id, "indices", yd.shape);
  py::gil_scoped_release nogil;
  cuda::max_pool_forward(p, yd.as<float>(), id.as<int64_t>(), xd.as<const float>());
}

void max_pool_bwd(py::handle dx, py::handle dy, py::handle idx, Triple k, Triple s, Triple pad,
                  Triple dil, bool ceil_mode, std::optional<Triple> out, bool from_pool) {
  const Dev dxd = dev(dx, "grad_input"), dyd = dev(dy, "grad_out");
  const Dev id = dev(idx, "indices", "int64");
  const Planes pl = planes_of(dxd, "grad_input");
  const PoolParams p = pool_of(pl, k, s, pad, dil, ceil_mode, out);
  expect_shape(dyd, "grad_out", pooled_shape(pl, p));
  expect_shape(id, "indices", dyd.shape);
  py::gil_scoped_release nogil;
  cuda::max_pool_backward(p, dxd.as<float>(), dyd.as<const float>(), id.as<const int64_t>(),
                          from_pool);
}

AvgOptions avg_options(bool count_include_pad, int64_t divisor_override) {
  if (divisor_override < 0) throw py::value_error("divisor_override: must be >= 1 (0: none)");
  AvgOptions o;
  o.count_include_pad = count_include_pad;
  o.divisor_override = divisor_override;
  return o;
}

void avg_pool_fwd(py::handle y, py::handle x, Triple k, Triple s, Triple pad, bool ceil_mode,
                  std::optional<Triple> out, bool count_include_pad, int64_t divisor_override) {
  const Dev xd = dev(x, "input"), yd = dev(y, "output");
  const Planes pl = planes_of(xd, "input");
  const PoolParams p = pool_of(pl, k, s, pad, {1, 1, 1}, ceil_mode, out);
  expect_shape(yd, "output", pooled_shape(pl, p));
  const AvgOptions o = avg_options(count_include_pad, divisor_override);
  py::gil_scoped_release nogil;
  cuda::avg_pool_forward(p, o, yd.as<float>(), xd.as<const float>());
}

void avg_pool_bwd(py::handle dx, py::handle dy, Triple k, Triple s, Triple pad, bool ceil_mode,
                  std::optional<Triple> out, bool count_include_pad, int64_t divisor_override) {
  const Dev dxd = dev(dx, "grad_input"), dyd = dev(dy, "grad_out");
  const Planes pl = planes_of(dxd, "grad_input");
  const PoolParams p = pool_of(pl, k, s, pad, {1, 1, 1}, ceil_mode, out);
  expect_shape(dyd, "grad_out", pooled_shape(pl, p));
  const AvgOptions o = avg_options(count_include_pad, divisor_override);
  py::gil_scoped_release nogil;
  cuda::avg_pool_backward(p, o, dxd.as<float>(), dyd.as<const float>());
}

// ---- max-unpooling: x, idx (N, C, *pooled), y (N, C, *unpooled) --------------------------------
UnpoolParams unpool_of(const Dev& small, const char* small_name, const Dev& big,
                       const char* big_name, const Dev& idx) {
  const Planes s = planes_of(small, small_name), b = planes_of(big, big_name);
  if (s.nd != b.nd || s.N != b.N || s.C != b.C)
    throw py::value_error(std::string(big_name) + ": shape " + shape_str(big.shape) +
                          " does not match " + small_name + " " + shape_str(small.shape) +
                          " in (N, C) and rank");
  expect_shape(idx, "indices", small.shape);
  return unpool_params(s.N * s.C, s.in[0] * s.in[1] * s.in[2], b.in[0] * b.in[1] * b.in[2]);
}

// The pooling that made the switches — `windows` None or (kernel, stride, padding, dilation,
// ceil_mode) as 3-D triples — when it is valid for these shapes (the unpooled extents in, the
// pooled out); only a hint enabling the one-pass paths, so anything else is simply dropped.
std::optional<PoolParams> windows_of(const Dev& small, const Dev& big, const py::object& windows) {
  if (windows.is_none()) return std::nullopt;
  const auto [k, s, pad, dil, ceil_mode] =
      windows.cast<std::tuple<Triple, Triple, Triple, Triple, bool>>();
  const Planes sp = planes_of(small, "input"), bp = planes_of(big, "output");
  try {
    const PoolParams w =
        pool_params(bp.N, bp.C, bp.in, k.data(), s.data(), pad.data(), dil.data(), ceil_mode);
    for (int d = 0; d < 3; ++d)
      if (w.out[d] != sp.in[d]) return std::nullopt;
    return w;
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

void unpool_fwd(py::handle y, py::handle x, py::handle idx, const py::object& windows,
                bool from_pool) {
  const Dev yd = dev(y, "output"), xd = dev(x, "input"), id = dev(idx, "indices", "int64");
  const UnpoolParams p = unpool_of(xd, "input", yd, "output", id);
  const std::optional<PoolParams> w = windows_of(xd, yd, windows);
  py::gil_scoped_release nogil;
  cuda::max_unpool_forward(p, yd.as<float>(), xd.as<const float>(), id.as<const int64_t>(),
                           w ? &*w : nullptr, from_pool);
}

void unpool_bwd(py::handle dx, py::handle dy, py::handle idx, const py::object& windows,
                bool from_pool) {
  const Dev dxd = dev(dx, "grad_input"), dyd = dev(dy, "grad_out");
  const Dev id = dev(idx, "indices", "int64");
  const UnpoolParams p = unpool_of(dxd, "grad_input", dyd, "grad_out", id);
  const std::optional<PoolParams> w = windows_of(dxd, dyd, windows);
  py::gil_scoped_release nogil;
  cuda::max_unpool_backward(p, dxd.as<float>(), dyd.as<const float>(), id.as<const int64_t>(),
                            w ? &*w : nullptr, from_pool);
}

// ---- batch norm: x (N, C, *) seen as (N, C, S); per-channel vectors (C,) ------------------------
struct NCSDims {
  int64_t N, C, S;
};
NCSDims ncs(const Dev& x, const char* name) {
  if (x.shape.size() < 2)
    throw py::value_error(std::string(name) + ": expected (N, C, ...), got " + shape_str(x.shape));
  int64_t S = 1;
  for (size_t d = 2; d < x.shape.size(); ++d) S = checked_mul(S, x.shape[d], name);
  return {x.shape[0], x.shape[1], S};
}

Dev channel_vec(py::handle a, const char* name, int64_t C, bool writable = false) {
  const Dev d = opt_dev(a, name, "float32", writable);
  if (d.ptr) expect_shape(d, name, {C});
  return d;
}

void bn_fwd(py::handle y, py::handle mean, py::handle invstd, py::handle x, py::handle gamma,
            py::handle beta, py::handle rm, py::handle rv, bool training, double momentum,
            double eps) {
  const Dev xd = dev(x, "input"), yd = dev(y, "output");
  const NCSDims d = ncs(xd, "input");
  expect_shape(yd, "output", xd.shape);
  const Dev md = channel_vec(mean, "mean", d.C), sd = channel_vec(invstd, "invstd", d.C);
  const Dev gd = channel_vec(gamma, "weight", d.C), bd = channel_vec(beta, "bias", d.C);
  const Dev rmd = channel_vec(rm, "running_mean", d.C, true);
  const Dev rvd = channel_vec(rv, "running_var", d.C, true);
  if (!md.ptr || !sd.ptr) throw py::value_error("mean/invstd: outputs required");
  if (!training && (!rmd.ptr || !rvd.ptr))
    throw py::value_error("running_mean/running_var: required when training=False");
  py::gil_scoped_release nogil;
  cuda::batch_norm_forward(d.N, d.C, d.S, yd.as<float>(), md.as<float>(), sd.as<float>(),
                           xd.as<const float>(), gd.as<const float>(), bd.as<const float>(),
                           rmd.as<float>(), rvd.as<float>(), training, momentum, eps);
}

void bn_bwd(py::handle dx, py::handle dgamma, py::handle dbeta, py::handle dy, py::handle x,
            py::handle gamma, py::handle mean, py::handle invstd, bool training) {
  const Dev xd = dev(x, "input"), dyd = dev(dy, "grad_out");
  const NCSDims d = ncs(xd, "input");
  expect_shape(dyd, "grad_out", xd.shape);
  const Dev dxd = opt_dev(dx, "grad_input");
  if (dxd.ptr) expect_shape(dxd, "grad_input", xd.shape);
  const Dev dgd = channel_vec(dgamma, "grad_weight", d.C, true);
  const Dev dbd = channel_vec(dbeta, "grad_bias", d.C, true);
  const Dev gd = channel_vec(gamma, "weight", d.C);
  const Dev md = channel_vec(mean, "mean", d.C), sd = channel_vec(invstd, "invstd", d.C);
  if (!md.ptr || !sd.ptr) throw py::value_error("mean/invstd: required");
  py::gil_scoped_release nogil;
  cuda::batch_norm_backward(d.N, d.C, d.S, dxd.as<float>(), dgd.as<float>(), dbd.as<float>(),
                            dyd.as<const float>(), xd.as<const float>(), gd.as<const float>(),
                            md.as<const float>(), sd.as<const float>(), training);
}

// ---- cross-entropy: logits (N, C, *spatial), items = target (N, *spatial) int64 ----------------
NCSDims ce_dims(const Dev& logits, const Dev& target) {
  const NCSDims d = ncs(logits, "input");
  std::vector<int64_t> items{logits.shape[0]};
  items.insert(items.end(), logits.shape.begin() + 2, logits.shape.end());
  expect_shape(target, "target", items);
  return d;
}

void ce_fwd(py::handle loss, py::handle lse, py::handle logits, py::handle target,
            py::handle weight, py::handle pixel_weight, int64_t ignore_index, double smoothing) {
  const Dev zd = dev(logits, "input"), td = dev(target, "target", "int64");
  const NCSDims d = ce_dims(zd, td);
  const Dev ld = dev(loss, "loss"), sd = dev(lse, "lse");
  expect_shape(ld, "loss", td.shape);
  expect_shape(sd, "lse", td.shape);
  const Dev wd = channel_vec(weight, "weight", d.C), pd = opt_dev(pixel_weight, "pixel_weight");
  if (pd.ptr) expect_shape(pd, "pixel_weight", td.shape);
  py::gil_scoped_release nogil;
  cuda::cross_entropy_forward(d.N, d.C, d.S, ld.as<float>(), sd.as<float>(), zd.as<const float>(),
                              td.as<const int64_t>(), wd.as<const float>(), pd.as<const float>(),
                              ignore_index, smoothing);
}

void ce_reduce(py::handle out, py::handle loss, py::handle target, py::handle weight, int64_t C,
               int64_t ignore_index, bool mean) {
  const Dev od = dev(out, "output"), ld = dev(loss, "loss"), td = dev(target, "target", "int64");
  expect_shape(od, "output", {});
  expect_shape(ld, "loss", td.shape);
  const Dev wd = channel_vec(weight, "weight", C);
  py::gil_scoped_release nogil;
  cuda::cross_entropy_reduce(td.size(), C, od.as<float>(), ld.as<const float>(),
                             td.as<const int64_t>(), wd.as<const float>(), ignore_index, mean);
}

void ce_item_grad(py::handle item_grad, py::handle grad_items, py::handle grad_scalar_dev,
                  double grad_scalar, py::handle pixel_weight, py::handle target,
                  py::handle weight, int64_t C, int64_t ignore_index, bool mean) {
  const Dev gd = dev(item_grad, "item_grad"), td = dev(target, "target", "int64");
  expect_shape(gd, "item_grad", td.shape);
  const Dev gi = opt_dev(grad_items, "grad_out"), gs = opt_dev(grad_scalar_dev, "grad_out");
  if (gi.ptr) expect_shape(gi, "grad_out", td.shape);
  if (gs.ptr) expect_shape(gs, "grad_out", {});
  const Dev pd = opt_dev(pixel_weight, "pixel_weight"), wd = channel_vec(weight, "weight", C);
  if (pd.ptr) expect_shape(pd, "pixel_weight", td.shape);
  py::gil_scoped_release nogil;
  cuda::cross_entropy_item_grad(td.size(), C, gd.as<float>(), gi.as<const float>(),
                                gs.as<const float>(), grad_scalar, pd.as<const float>(),
                                td.as<const int64_t>(), wd.as<const float>(), ignore_index, mean);
}

void ce_bwd(py::handle dlogits, py::handle item_grad, py::handle logits, py::handle lse,
            py::handle target, py::handle weight, int64_t ignore_index, double smoothing) {
  const Dev zd = dev(logits, "input"), td = dev(target, "target", "int64");
  const NCSDims d = ce_dims(zd, td);
  const Dev dd = dev(dlogits, "grad_input"), gd = dev(item_grad, "item_grad"), sd = dev(lse, "lse");
  expect_shape(dd, "grad_input", zd.shape);
  expect_shape(gd, "item_grad", td.shape);
  expect_shape(sd, "lse", td.shape);
  const Dev wd = channel_vec(weight, "weight", d.C);
  py::gil_scoped_release nogil;
  cuda::cross_entropy_backward(d.N, d.C, d.S, dd.as<float>(), gd.as<const float>(),
                               zd.as<const float>(), sd.as<const float>(), td.as<const int64_t>(),
                               wd.as<const float>(), ignore_index, smoothing);
}

// ---- optimizer updates: every state array has the parameter's shape, updated in place -----------
Dev state(py::handle a, const char* name, const Dev& p, bool optional = false) {
  const Dev d = optional ? opt_dev(a, name, "float32", true) : dev(a, name, "float32", true);
  if (d.ptr) expect_shape(d, name, p.shape);
  return d;
}

void sgd(py::handle p, py::handle g, py::handle buf, double lr, double momentum, double dampening,
         double weight_decay, bool nesterov, bool first) {
  const Dev pd = dev(p, "param", "float32", true);
  const Dev gd = dev(g, "grad");
  expect_shape(gd, "grad", pd.shape);
  const Dev bd = state(buf, "momentum_buffer", pd, momentum == 0);
  py::gil_scoped_release nogil;
  cuda::sgd_step(pd.size(), pd.as<float>(), gd.as<const float>(), bd.as<float>(), lr, momentum,
                 dampening, weight_decay, nesterov, first);
}

void adam(py::handle p, py::handle g, py::handle m, py::handle v, py::handle max_v, int64_t t,
          double lr, double beta1, double beta2, double eps, double weight_decay, bool decoupled) {
  if (t < 1) throw py::value_error("step: must be >= 1");
  const Dev pd = dev(p, "param", "float32", true), gd = dev(g, "grad");
  expect_shape(gd, "grad", pd.shape);
  const Dev md = state(m, "exp_avg", pd), vd = state(v, "exp_avg_sq", pd);
  const Dev xd = state(max_v, "max_exp_avg_sq", pd, true);
  py::gil_scoped_release nogil;
  cuda::adam_step(pd.size(), pd.as<float>(), gd.as<const float>(), md.as<float>(), vd.as<float>(),
                  xd.as<float>(), t, lr, beta1, beta2, eps, weight_decay, decoupled, xd.ptr != 0);
}

// ---- elementwise helpers of the layer API (eltwise.cu) -------------------------------------------
void add_scaled(py::handle out, py::handle a, double alpha, py::handle b) {
  const Dev od = dev(out, "out", "float32", true), ad = dev(a, "a"), bd = dev(b, "b");
  expect_shape(ad, "a", od.shape);
  expect_shape(bd, "b", od.shape);
  py::gil_scoped_release nogil;
  cuda::add_scaled(od.size(), od.as<float>(), ad.as<const float>(), float(alpha),
                   bd.as<const float>());
}

// y = x · m[i / group]: m has x.size / group elements
void mul_grouped(py::handle y, py::handle x, py::handle m, int64_t group) {
  const Dev yd = dev(y, "output", "float32", true), xd = dev(x, "input"), md = dev(m, "mask");
  expect_shape(yd, "output", xd.shape);
  if (group < 1 || xd.size() % group != 0 || md.size() != xd.size() / group)
    throw py::value_error("mask: " + std::to_string(md.size()) + " elements do not give one per " +
                          std::to_string(group) + " elements of input " + shape_str(xd.shape));
  py::gil_scoped_release nogil;
  cuda::mul_grouped(xd.size(), group, yd.as<float>(), xd.as<const float>(), md.as<const float>());
}

void dropout_mask(py::handle mask, double p, uint64_t seed) {
  if (!(p >= 0.0 && p <= 1.0)) throw py::value_error("p: must be in [0, 1]");
  const Dev md = dev(mask, "mask", "float32", true);
  py::gil_scoped_release nogil;
  cuda::dropout_mask(md.size(), md.as<float>(), p, seed);
}

// count (0-d int64) += correct argmax predictions of logits (N, C, *) for target (N, *)
void count_correct(py::handle count, py::handle logits, py::handle target) {
  const Dev cd = dev(count, "count", "int64", true), zd = dev(logits, "logits");
  const Dev td = dev(target, "target", "int64");
  expect_shape(cd, "count", {});
  const NCSDims d = ncs(zd, "logits");
  std::vector<int64_t> items{zd.shape[0]};
  items.insert(items.end(), zd.shape.begin() + 2, zd.shape.end());
  expect_shape(td, "target", items);
  py::gil_scoped_release nogil;
  cuda::count_correct(d.N, d.C, d.S, cd.as<int64_t>(), zd.as<const float>(),
                      td.as<const int64_t>());
}

}  // namespace

CNNFAST_BINDINGS(cuda_ops) {
  m.def("cuda_max_pool_forward", &max_pool_fwd);
  // from_pool: the indices are max_pool's own, unchanged (cuda.h: the window check is deferred)
  m.def("cuda_max_pool_backward", &max_pool_bwd, py::arg("dx"), py::arg("dy"), py::arg("idx"),
        py::arg("k"), py::arg("s"), py::arg("pad"), py::arg("dil"), py::arg("ceil_mode"),
        py::arg("out"), py::arg("from_pool") = false);
  m.def("cuda_avg_pool_forward", &avg_pool_fwd);
  m.def("cuda_avg_pool_backward", &avg_pool_bwd);
  m.def("cuda_max_unpool_forward", &unpool_fwd, py::arg("y"), py::arg("x"), py::arg("idx"),
        py::arg("windows") = py::none(), py::arg("from_pool") = false);
  m.def("cuda_max_unpool_backward", &unpool_bwd, py::arg("dx"), py::arg("dy"), py::arg("idx"),
        py::arg("windows") = py::none(), py::arg("from_pool") = false);
  m.def("cuda_batch_norm_forward", &bn_fwd);
  m.def("cuda_batch_norm_backward", &bn_bwd);
  m.def("cuda_cross_entropy_forward", &ce_fwd);
  m.def("cuda_cross_entropy_reduce", &ce_reduce);
  m.def("cuda_cross_entropy_item_grad", &ce_item_grad);
  m.def("cuda_cross_entropy_backward", &ce_bwd);
  m.def("cuda_sgd_step", &sgd);
  m.def("cuda_adam_step", &adam);
  m.def("cuda_add_scaled", &add_scaled);
  m.def("cuda_mul_grouped", &mul_grouped);
  m.def("cuda_dropout_mask", &dropout_mask);
  m.def("cuda_count_correct", &count_correct);
}

}  // namespace cnnfast::py_bind
#endif  // CNNFAST_CUDA_BUILT
