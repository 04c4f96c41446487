// dispatch.cpp — run-time ISA detection and selection (once, at first use), CNNFAST_ISA override,
// thread count, and the kernel table. Scalar kernels are always present.
#include "cpu/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>

#include "cnnfast/checked.h"
#include "cnnfast/runtime.h"

#ifdef CNNFAST_OPENMP
#include <omp.h>
#endif

namespace cnnfast {
namespace {

bool cpu_has(Isa isa) {
  if (isa == Isa::scalar) return true;
  if (isa_emulated(isa)) return cpu_has(Isa::avx2);  // the emulation runs on AVX2
#if defined(CNNFAST_X86) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (isa == Isa::avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == Isa::avx512)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("fma");
#endif
  return false;
}

Isa initial_isa() {
  const char* env = std::getenv("CNNFAST_ISA");
  if (env && *env && std::string(env) != "auto") {
    const std::string name(env);
    if (name != "scalar" && name != "avx2" && name != "avx512")  // cnnfast's import reports it
      arg_error("CNNFAST_ISA=" + name + ": must be one of 'auto', 'scalar', 'avx2', 'avx512'");
    const Isa want = isa_from_name(name);
    if (!isa_supported(want))
      arg_error(std::string("CNNFAST_ISA=") + env + " is not supported by this CPU/build");
    return want;
  }
  return isa_detected();
}

std::atomic<int> g_isa{-1};
std::once_flag g_isa_once;
std::atomic<int> g_threads{0};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

Isa isa_from_name(const std::string& name) {
  if (name == "scalar") return Isa::scalar;
  if (name == "avx2") return Isa::avx2;
  if (name == "avx512") return Isa::avx512;
  arg_error("isa must be one of 'auto', 'scalar', 'avx2', 'avx512'; got '" + name + "'");
}

bool isa_supported(Isa isa) {
#ifndef CNNFAST_X86
  if (isa != Isa::scalar) return false;
#endif
  return cpu_has(isa);
}

std::vector<Isa> isa_available() {
  std::vector<Isa> out;
  for (Isa i : {Isa::scalar, Isa::avx2, Isa::avx512})
    if (isa_supported(i)) out.push_back(i);
  return out;
}

bool isa_emulated(Isa isa) {
#ifdef CNNFAST_AVX512_EMULATION
  return isa == Isa::avx512;
#else
  (void)isa;
  return false;
#endif
}

Isa isa_detected() { return isa_available().back(); }

Isa isa_active() {
  std::call_once(g_isa_once, [] {
    if (g_isa.load() < 0) g_isa.store(static_cast<int>(initial_isa()));
  });
  return static_cast<Isa>(g_isa.load());
}

void set_isa(Isa isa) {
  if (!isa_supported(isa))
    arg_error(std::string("isa '") + isa_name(isa) + "' is not supported by this CPU/build");
  std::call_once(g_isa_once, [] {});
  g_isa.store(static_cast<int>(isa));
}

int get_num_threads() {
  if (threads_limited_by_fork()) return 1;
  int n = g_threads.load();
  if (n > 0) return n;
#ifdef CNNFAST_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) {
  if (n < 1) arg_error("num_threads must be >= 1, got " + std::to_string(n));
#ifndef CNNFAST_OPENMP
  n = 1;
#endif
  g_threads.store(n);
}

bool openmp_enabled() {
#ifdef CNNFAST_OPENMP
  return true;
#else
  return false;
#endif
}

const char* version() { return CNNFAST_VERSION; }


template <>
const GemmKernel<float>& gemm_kernel<float>() {
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512: return gemm_f32_12x32__avx512;
    case Isa::avx2: return gemm_f32_6x16__avx2;
#endif
    default: return gemm_f32_4x8__scalar;
  }
}

template <>
const GemmKernel<double>& gemm_kernel<double>() {
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512: return gemm_f64_12x16__avx512;
    case Isa::avx2: return gemm_f64_6x8__avx2;
#endif
    default: return gemm_f64_4x4__scalar;
  }
}

const PeakProbe& peak_probe() {
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512: return peak_fma__avx512;
    case Isa::avx2: return peak_fma__avx2;
#endif
    default: return peak_fma__scalar;
  }
}

template <>
const DirectRowKernels<float>& direct_row_kernels<float>() {
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512: return conv2d_direct_rows_f32__avx512;
    case Isa::avx2: return conv2d_direct_rows_f32__avx2;
#endif
    default: return conv2d_direct_rows_f32__scalar;
  }
}

template <>
const DirectRowKernels<double>& direct_row_kernels<double>() {
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512: return conv2d_direct_rows_f64__avx512;
    case Isa::avx2: return conv2d_direct_rows_f64__avx2;
#endif
    default: return conv2d_direct_rows_f64__scalar;
  }
}

template <>
const DirectBlockKernels<float>& direct_block_kernels<float>() {
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512: return conv2d_direct_block_f32__avx512;
    case Isa::avx2: return conv2d_direct_block_f32__avx2;
#endif
    default: return conv2d_direct_block_f32__scalar;
  }
}

template <>
const DirectBlockKernels<double>& direct_block_kernels<double>() {
  return conv2d_direct_block_f64__scalar;  // f64 is the accuracy path: the portable loops
}

template <>
const DepthwiseRowKernels<float>& depthwise_row_kernels<float>() {
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512: return conv2d_depthwise_rows_f32__avx512;
    case Isa::avx2: return conv2d_depthwise_rows_f32__avx2;
#endif
    default: return conv2d_depthwise_rows_f32__scalar;
  }
}

template <>
const DepthwiseRowKernels<double>& depthwise_row_kernels<double>() {
  return conv2d_depthwise_rows_f64__scalar;  // f64 is the accuracy path: the portable loops
}

template <>
const WinogradRowKernels<float>& winograd_row_kernels<float>(int m) {
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512:
      return m == 4 ? winograd_f4x3_rows_f32__avx512 : winograd_f2x3_rows_f32__avx512;
    case Isa::avx2:
      return m == 4 ? winograd_f4x3_rows_f32__avx2 : winograd_f2x3_rows_f32__avx2;
#endif
    default: return m == 4 ? winograd_f4x3_rows_f32__scalar : winograd_f2x3_rows_f32__scalar;
  }
}

template <>
const WinogradRowKernels<double>& winograd_row_kernels<double>(int m) {
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512:
      return m == 4 ? winograd_f4x3_rows_f64__avx512 : winograd_f2x3_rows_f64__avx512;
    case Isa::avx2:
      return m == 4 ? winograd_f4x3_rows_f64__avx2 : winograd_f2x3_rows_f64__avx2;
#endif
    default: return m == 4 ? winograd_f4x3_rows_f64__scalar : winograd_f2x3_rows_f64__scalar;
  }
}

template <>
const ImplicitTileKernel<float>& implicit_tile_kernel<float>() {
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512: return conv2d_implicit_f32_12x16__avx512;
    case Isa::avx2: return conv2d_implicit_f32_6x16__avx2;
#endif
    default: return conv2d_implicit_f32_6x16__scalar;
  }
}

template <>
const ImplicitTileKernel<double>& implicit_tile_kernel<double>() {
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512: return conv2d_implicit_f64_6x16__avx512;
    case Isa::avx2: return conv2d_implicit_f64_6x16__avx2;
#endif
    default: return conv2d_implicit_f64_6x16__scalar;
  }
}

// 8x32 on AVX-512: each broadcast feeds two FMAs (one-thread tile in L1: 177 vs 120 GFLOP/s of
// a 191 peak); only where the channels fill its 32-wide blocks (16 channels would compute 32).
// 6x64 where they fill 64-wide ones: 10 loads per 24 FMAs instead of 10 per 16 (A/B against 8x32,
// 2 threads: forward alexnet_conv1 0.91-0.98, resnet_conv1 0.82-0.87, strided 0.94-0.96, dilated
// 0.87-0.91, dilated dx 0.89; weight gradients 0.94-0.97), but not on short reductions, where
// the stores bound the tile and its 6 positions take masked ones (resnet_1x1 backward-data, 64
// steps: 1.36x slower).
template <>
const ImplicitTileKernel<float>& implicit_tile_kernel<float>(int64_t channels, int64_t depth) {
#ifdef CNNFAST_X86
  if (isa_active() == Isa::avx512) {
    if (channels % 64 == 0 && depth >= 128) return conv2d_implicit_f32_6x64__avx512;
    if (channels % 32 == 0) return conv2d_implicit_f32_8x32__avx512;
  }
#endif
  return implicit_tile_kernel<float>();
}

template <>
const ImplicitTileKernel<double>& implicit_tile_kernel<double>(int64_t, int64_t) {
  return implicit_tile_kernel<double>();
}

template <>
const EltwiseKernel<float>& eltwise_kernel<float>() {
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512: return eltwise_f32__avx512;
    case Isa::avx2: return eltwise_f32__avx2;
#endif
    default: return eltwise_f32__scalar;
  }
}

template <>
const EltwiseKernel<double>& eltwise_kernel<double>() {
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512: return eltwise_f64__avx512;
    case Isa::avx2: return eltwise_f64__avx2;
#endif
    default: return eltwise_f64__scalar;
  }
}

template <>
const SoftmaxKernel<float>& softmax_kernel<float>() {
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512: return softmax_f32__avx512;
    case Isa::avx2: return softmax_f32__avx2;
#endif
    default: return softmax_f32__scalar;
  }
}

template <>
const SoftmaxKernel<double>& softmax_kernel<double>() {
  switch (isa_active()) {
#ifdef CNNFAST_X86
    case Isa::avx512: return softmax_f64__avx512;
    case Isa::avx2: return softmax_f64__avx2;
#endif
    default: return softmax_f64__scalar;
  }
}

std::vector<std::string> active_kernel_names() {
  std::vector<std::string> names = {
      gemm_kernel<float>().name,           implicit_tile_kernel<float>().name,
      direct_row_kernels<float>().name,    direct_block_kernels<float>().name,
      depthwise_row_kernels<float>().name,
      winograd_row_kernels<float>(2).name, winograd_row_kernels<float>(4).name,
      eltwise_kernel<float>().name,        softmax_kernel<float>().name,
      peak_probe().name};
  const ImplicitTileKernel<float>& wide = implicit_tile_kernel<float>(32);  // 32k channels
  const ImplicitTileKernel<float>& wider = implicit_tile_kernel<float>(64);  // 64k channels
  if (&wider != &wide) names.insert(names.begin() + 2, wider.name);
  if (&wide != &implicit_tile_kernel<float>()) names.insert(names.begin() + 2, wide.name);
  return names;
}

}  // namespace cnnfast
