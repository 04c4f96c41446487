// checked.h — 64-bit size arithmetic that throws instead of wrapping, plus the argument-error helper.
// Every size the library computes from user input goes through these.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace cnnfast {

// Thrown for any invalid argument; the Python bindings turn it into ValueError.
[[noreturn]] inline void arg_error(const std::string& msg) { throw std::invalid_argument(msg); }

inline int64_t checked_mul(int64_t a, int64_t b, const char* what = "size") {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) arg_error(std::string(what) + " overflows int64");
  return r;
}
inline int64_t checked_add(int64_t a, int64_t b, const char* what = "size") {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) arg_error(std::string(what) + " overflows int64");
  return r;
}
// Product of a list of non-negative extents, overflow-checked.
inline int64_t checked_prod(std::initializer_list<int64_t> xs, const char* what = "size") {
  int64_t r = 1;
  for (int64_t x : xs) r = checked_mul(r, x, what);
  return r;
}

}  // namespace cnnfast
