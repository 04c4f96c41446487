// module.cpp — cnnfast._core: runtime facts and controls; each op family binds in its own file.
#include <pybind11/stl.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "cnnfast/runtime.h"
#include "common.h"

namespace cnnfast::py_bind {

bool& poison_outputs() {
  static bool on = false;
  return on;
}

namespace {
std::vector<std::pair<const char*, BindFn>>& registry() {
  static std::vector<std::pair<const char*, BindFn>> r;
  return r;
}
}  // namespace

int register_bindings(const char* family, BindFn fn) {
  registry().emplace_back(family, fn);
  return static_cast<int>(registry().size());
}

void bind_all(py::module_& m) {
  // Registration order across files is unspecified; bind in name order for a stable module.
  auto r = registry();
  std::sort(r.begin(), r.end(), [](auto& a, auto& b) { return std::string(a.first) < b.first; });
  for (auto& [family, fn] : r) fn(m);
}

}  // namespace cnnfast::py_bind

PYBIND11_MODULE(_core, m) {
  namespace py = pybind11;
  using namespace cnnfast;
  m.doc() = "cnnfast C++ core (private; use cnnfast and cnnfast.functional)";
  m.def("version", [] { return std::string(version()); });
#ifndef CNNFAST_BUILD_COMMIT
#define CNNFAST_BUILD_COMMIT "unknown"
#endif
  m.def("build_commit", [] { return std::string(CNNFAST_BUILD_COMMIT); });
  m.def("isa_active", [] { return std::string(isa_name(isa_active())); });
  m.def("isa_detected", [] { return std::string(isa_name(isa_detected())); });
  m.def("isa_available", [] {
    std::vector<std::string> out;
    for (Isa i : isa_available()) out.push_back(isa_name(i));
    return out;
  });
  m.def("isa_emulated", [] {
    std::vector<std::string> out;
    for (Isa i : {Isa::scalar, Isa::avx2, Isa::avx512})
      if (isa_emulated(i)) out.push_back(isa_name(i));
    return out;
  });
  m.def("set_isa", [](const std::string& name) { set_isa(isa_from_name(name)); }, py::arg("isa"));
  m.def("get_num_threads", &get_num_threads);
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("threads_limited_by_fork", &threads_limited_by_fork);
  m.def("openmp_enabled", &openmp_enabled);
  m.def("kernels", &active_kernel_names);
  m.def("_set_poison_outputs", [](bool on) { py_bind::poison_outputs() = on; });
  m.def("_output_cache_bytes", &py_bind::output_cache_bytes);
  m.def("_scratch_bytes", &scratch_bytes);
  // The thread budget's observations (tests): peak OpenMP workers running at once besides the
  // calling threads, top-level parallel regions run, and those granted fewer threads than asked.
  m.def("_thread_stats", [] {
    const ThreadStats t = thread_stats();
    py::dict d;
    d["peak_workers"] = t.peak_workers;
    d["regions"] = t.regions;
    d["shrunk"] = t.shrunk;
    return d;
  });
  m.def("_reset_thread_stats", &reset_thread_stats);
  py_bind::bind_all(m);
}
