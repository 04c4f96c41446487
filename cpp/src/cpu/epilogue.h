// epilogue.h — the fused forward epilogue: y = act(y + bias) over one output row/chunk while it is
// still in cache. ReLU keeps NaN (as PyTorch's relu does): v < 0 ? 0 : v.
#pragma once
#include <cstdint>

#include "cnnfast/conv.h"

namespace cnnfast::cpu {

template <class T>
inline void bias_act(T* y, int64_t n, T bias, Activation act) {
  if (act == Activation::relu) {
    for (int64_t j = 0; j < n; ++j) {
      const T v = y[j] + bias;
      y[j] = v < T(0) ? T(0) : v;
    }
  } else if (bias != T(0)) {
    for (int64_t j = 0; j < n; ++j) y[j] += bias;
  }
}

}  // namespace cnnfast::cpu
