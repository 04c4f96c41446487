// bind_cuda_emulate.cpp — test hooks (`_cuda_emulate_*`): the CUDA kernels' own programs run on
// the HOST over NumPy float32 arrays (cuda.h, namespace emulate), so their index math is checked
// against the CPU ops on machines without a GPU. Outputs are fresh (NaN-poisoned in tests).
#include "common.h"

#ifdef CNNFAST_CUDA_BUILT
#include <pybind11/stl.h>

#include <array>
#include <optional>

#include "cnnfast/checked.h"
#include "cnnfast/cuda.h"

namespace cnnfast::py_bind {
namespace {

using Pair = std::array<int64_t, 2>;
using Quad = std::array<int64_t, 4>;
using Triple = std::array<int64_t, 3>;

std::vector<int64_t> shape_of(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

float* out_ptr(py::array_t<float>& a) { return a.mutable_data(); }

Conv2dParams conv_params(const std::vector<int64_t>& xs, const std::vector<int64_t>& ws,
                         Pair st, Quad pad, Pair dil, int64_t groups) {
  if (xs.size() != 4 || ws.size() != 4) throw py::value_error("expected 4-D input and weight");
  return conv2d_params(xs[0], xs[1], xs[2], xs[3], ws[0], ws[1], ws[2], ws[3], st[0], st[1],
                       pad[0], pad[1], pad[2], pad[3], dil[0], dil[1], groups);
}

py::array conv_fwd(const py::array& x, const py::array& w, std::optional<py::array> b, Pair st,
                   Quad pad, Pair dil, int64_t groups, bool relu, const std::string& algo) {
  const Conv2dParams p = conv_params(shape_of(x), shape_of(w), st, pad, dil, groups);
  auto y = new_output<float>({p.N, p.K, p.P, p.Q});
  cuda::emulate::conv2d_forward(p, out_ptr(y), in_ptr<float>(x, "input"),
                                in_ptr<float>(w, "weight"), b ? in_ptr<float>(*b, "bias") : nullptr,
                                relu, conv_algo_from_name(algo.c_str()));
  return y;
}

py::array conv_bwd_data(const py::array& dy, const py::array& w, std::vector<int64_t> x_shape,
                        Pair st, Quad pad, Pair dil, int64_t groups, const std::string& algo) {
  const Conv2dParams p = conv_params(x_shape, shape_of(w), st, pad, dil, groups);
  if (shape_of(dy) != std::vector<int64_t>{p.N, p.K, p.P, p.Q})
    throw py::value_error("grad_out: wrong shape");
  auto dx = new_output<float>(x_shape);
  cuda::emulate::conv2d_backward_data(p, out_ptr(dx), in_ptr<float>(dy, "grad_out"),
                                      in_ptr<float>(w, "weight"),
                                      conv_algo_from_name(algo.c_str()));
  return dx;
}

py::array conv_bwd_weight(const py::array& dy, const py::array& x, std::vector<int64_t> w_shape,
                          Pair st, Quad pad, Pair dil, int64_t groups, int multiprocessors,
                          const std::string& algo) {
  const Conv2dParams p = conv_params(shape_of(x), w_shape, st, pad, dil, groups);
  if (shape_of(dy) != std::vector<int64_t>{p.N, p.K, p.P, p.Q})
    throw py::value_error("grad_out: wrong shape");
  auto dw = new_output<float>(w_shape, /*zero=*/true);
  cuda::emulate::conv2d_backward_weight(p, out_ptr(dw), in_ptr<float>(dy, "grad_out"),
                                        in_ptr<float>(x, "input"), multiprocessors,
                                        conv_algo_from_name(algo.c_str()));
  return dw;
}

// x (N, C, *spatial) -> the 3-D core's parameters; `out` given: adaptive.
PoolParams pool_of(const std::vector<int64_t>& xs, Triple k, Triple s, Triple pad, Triple dil,
                   bool ceil, std::optional<Triple> out) {
  if (xs.size() < 3 || xs.size() > 5) throw py::value_error("expected (N, C, *spatial)");
  int64_t in[3] = {1, 1, 1};
  for (size_t d = 2; d < xs.size(); ++d) in[3 - (xs.size() - d)] = xs[d];
  if (out) return adaptive_pool_params(xs[0], xs[1], in, out->data());
  return pool_params(xs[0], xs[1], in, k.data(), s.data(), pad.data(), dil.data(), ceil);
}

std::vector<int64_t> pooled(const std::vector<int64_t>& xs, const PoolParams& p) {
  std::vector<int64_t> s{xs[0], xs[1]};
  for (size_t d = 3 - (xs.size() - 2); d < 3; ++d) s.push_back(p.out[d]);
  return s;
}

py::tuple max_fwd(const py::array& x, Triple k, Triple s, Triple pad, Triple dil, bool ceil,
                  std::optional<Triple> out) {
  const PoolParams p = pool_of(shape_of(x), k, s, pad, dil, ceil, out);
  auto y = new_output<float>(pooled(shape_of(x), p));
  auto idx = new_output<int64_t>(pooled(shape_of(x), p));
  cuda::emulate::max_pool_forward(p, out_ptr(y), idx.mutable_data(), in_ptr<float>(x, "input"));
  return py::make_tuple(y, idx);
}

py::array max_bwd(const py::array& dy, const py::array& idx, std::vector<int64_t> x_shape,
                  Triple k, Triple s, Triple pad, Triple dil, bool ceil,
                  std::optional<Triple> out) {
  const PoolParams p = pool_of(x_shape, k, s, pad, dil, ceil, out);
  if (shape_of(dy) != pooled(x_shape, p) || shape_of(idx) != shape_of(dy))
    throw py::value_error("grad_out/indices: wrong shape");
  auto dx = new_output<float>(x_shape);
  cuda::emulate::max_pool_backward(p, out_ptr(dx), in_ptr<float>(dy, "grad_out"),
                                   in_ptr<int64_t>(idx, "indices"));
  return dx;
}

AvgOptions avg_opts(bool include_pad, int64_t divisor) {
  AvgOptions o;
  o.count_include_pad = include_pad;
  o.divisor_override = divisor;
  return o;
}

py::array avg_fwd(const py::array& x, Triple k, Triple s, Triple pad, bool ceil,
                  std::optional<Triple> out, bool include_pad, int64_t divisor) {
  const PoolParams p = pool_of(shape_of(x), k, s, pad, {1, 1, 1}, ceil, out);
  auto y = new_output<float>(pooled(shape_of(x), p));
  cuda::emulate::avg_pool_forward(p, avg_opts(include_pad, divisor), out_ptr(y),
                                  in_ptr<float>(x, "input"));
  return y;
}

py::array avg_bwd(const py::array& dy, std::vector<int64_t> x_shape, Triple k, Triple s,
                  Triple pad, bool ceil, std::optional<Triple> out, bool include_pad,
                  int64_t divisor) {
  const PoolParams p = pool_of(x_shape, k, s, pad, {1, 1, 1}, ceil, out);
  if (shape_of(dy) != pooled(x_shape, p)) throw py::value_error("grad_out: wrong shape");
  auto dx = new_output<float>(x_shape);
  cuda::emulate::avg_pool_backward(p, avg_opts(include_pad, divisor), out_ptr(dx),
                                   in_ptr<float>(dy, "grad_out"));
  return dx;
}

// Unpooling on (planes, count) views: x, idx (planes, in_count); y (planes, out_count).
// `windows`: None or (unpooled extents, kernel, stride, padding, dilation, ceil_mode) as 3-D
// triples, the pooling hint that enables the one-pass paths (last_pool_path() tells which ran).
std::optional<PoolParams> unpool_windows(int64_t planes, const py::object& windows) {
  if (windows.is_none()) return std::nullopt;
  const auto [in, k, s, pad, dil, ceil] =
      windows.cast<std::tuple<Triple, Triple, Triple, Triple, Triple, bool>>();
  return pool_params(1, planes, in.data(), k.data(), s.data(), pad.data(), dil.data(), ceil);
}

py::array unpool_fwd(const py::array& x, const py::array& idx, int64_t out_count,
                     const py::object& windows) {
  if (x.ndim() != 2 || shape_of(idx) != shape_of(x)) throw py::value_error("expected 2-D x, idx");
  const UnpoolParams p = unpool_params(x.shape(0), x.shape(1), out_count);
  const std::optional<PoolParams> w = unpool_windows(p.planes, windows);
  auto y = new_output<float>({p.planes, p.out_count});
  cuda::emulate::max_unpool_forward(p, out_ptr(y), in_ptr<float>(x, "input"),
                                    in_ptr<int64_t>(idx, "indices"), w ? &*w : nullptr);
  return y;
}

py::array unpool_bwd(const py::array& dy, const py::array& idx, const py::object& windows) {
  if (dy.ndim() != 2 || idx.ndim() != 2 || idx.shape(0) != dy.shape(0))
    throw py::value_error("expected 2-D grad_out, idx with equal plane counts");
  const UnpoolParams p = unpool_params(idx.shape(0), idx.shape(1), dy.shape(1));
  const std::optional<PoolParams> w = unpool_windows(p.planes, windows);
  auto dx = new_output<float>({p.planes, p.in_count});
  cuda::emulate::max_unpool_backward(p, out_ptr(dx), in_ptr<float>(dy, "grad_out"),
                                     in_ptr<int64_t>(idx, "indices"), w ? &*w : nullptr);
  return dx;
}

// Cross-entropy on (N, C, S) logits and (N, S) targets.
py::tuple ce_fwd(const py::array& z, const py::array& t, std::optional<py::array> w,
                 std::optional<py::array> pw, int64_t ii, double ls) {
  if (z.ndim() != 3 || t.ndim() != 2) throw py::value_error("expected (N, C, S), (N, S)");
  const int64_t N = z.shape(0), C = z.shape(1), S = z.shape(2);
  auto loss = new_output<float>({N, S}), lse = new_output<float>({N, S});
  cuda::emulate::cross_entropy_forward(N, C, S, out_ptr(loss), out_ptr(lse),
                                       in_ptr<float>(z, "input"), in_ptr<int64_t>(t, "target"),
                                       w ? in_ptr<float>(*w, "weight") : nullptr,
                                       pw ? in_ptr<float>(*pw, "pixel_weight") : nullptr, ii, ls);
  return py::make_tuple(loss, lse);
}

py::array ce_bwd(const py::array& g, const py::array& z, const py::array& lse, const py::array& t,
                 std::optional<py::array> w, int64_t ii, double ls) {
  if (z.ndim() != 3) throw py::value_error("expected (N, C, S)");
  const int64_t N = z.shape(0), C = z.shape(1), S = z.shape(2);
  auto dz = new_output<float>(shape_of(z));
  cuda::emulate::cross_entropy_backward(N, C, S, out_ptr(dz), in_ptr<float>(g, "item_grad"),
                                        in_ptr<float>(z, "input"), in_ptr<float>(lse, "lse"),
                                        in_ptr<int64_t>(t, "target"),
                                        w ? in_ptr<float>(*w, "weight") : nullptr, ii, ls);
  return dz;
}

float* inout(const py::array& a, const char* name) {
  return const_cast<float*>(in_ptr<float>(a, name));
}

void sgd(const py::array& p, const py::array& g, std::optional<py::array> buf, double lr,
         double momentum, double dampening, double wd, bool nesterov, bool first) {
  cuda::emulate::sgd_step(p.size(), inout(p, "param"), in_ptr<float>(g, "grad"),
                          buf ? inout(*buf, "buf") : nullptr, lr, momentum, dampening, wd,
                          nesterov, first);
}

void adam(const py::array& p, const py::array& g, const py::array& m, const py::array& v,
          std::optional<py::array> max_v, int64_t t, double lr, double b1, double b2, double eps,
          double wd, bool decoupled) {
  cuda::emulate::adam_step(p.size(), inout(p, "param"), in_ptr<float>(g, "grad"), inout(m, "m"),
                           inout(v, "v"), max_v ? inout(*max_v, "max_v") : nullptr, t, lr, b1, b2,
                           eps, wd, decoupled, max_v.has_value());
}

}  // namespace

CNNFAST_BINDINGS(cuda_emulate) {
  m.def("_cuda_emulate_conv2d_forward", &conv_fwd, py::arg("x"), py::arg("w"), py::arg("b"),
        py::arg("stride"), py::arg("pad"), py::arg("dil"), py::arg("groups"), py::arg("relu"),
        py::arg("algo") = "auto");
  m.def("_cuda_emulate_conv2d_backward_data", &conv_bwd_data, py::arg("dy"), py::arg("w"),
        py::arg("x_shape"), py::arg("stride"), py::arg("pad"), py::arg("dil"), py::arg("groups"),
        py::arg("algo") = "auto");
  m.def("_cuda_emulate_conv2d_backward_weight", &conv_bwd_weight, py::arg("dy"), py::arg("x"),
        py::arg("w_shape"), py::arg("stride"), py::arg("pad"), py::arg("dil"), py::arg("groups"),
        py::arg("multiprocessors"), py::arg("algo") = "auto");
  m.def("_cuda_emulate_max_pool_forward", &max_fwd);
  m.def("_cuda_emulate_max_pool_backward", &max_bwd);
  m.def("_cuda_emulate_avg_pool_forward", &avg_fwd);
  m.def("_cuda_emulate_avg_pool_backward", &avg_bwd);
  m.def("_cuda_emulate_max_unpool_forward", &unpool_fwd, py::arg("x"), py::arg("idx"),
        py::arg("out_count"), py::arg("windows") = py::none());
  m.def("_cuda_emulate_max_unpool_backward", &unpool_bwd, py::arg("dy"), py::arg("idx"),
        py::arg("windows") = py::none());
  m.def("_cuda_emulate_last_pool_path", [] { return std::string(cuda::emulate::last_pool_path()); });
  m.def("_cuda_emulate_cross_entropy_forward", &ce_fwd);
  m.def("_cuda_emulate_cross_entropy_backward", &ce_bwd);
  m.def("_cuda_emulate_sgd_step", &sgd);
  m.def("_cuda_emulate_adam_step", &adam);
}

}  // namespace cnnfast::py_bind
#endif  // CNNFAST_CUDA_BUILT
