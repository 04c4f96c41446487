// avx512_emulation.h — TEST BUILDS ONLY (CMake CNNFAST_AVX512_EMULATION=ON): force-included
// before each *__avx512.cpp so its AVX-512 intrinsics run on a CPU without AVX-512. SIMDe
// (Debian: libsimde-dev) maps every _mm512_* name to a portable implementation built on AVX2.
// The kernels' own code is unchanged; only the instructions under it are emulated, so a test run
// on that build (avx512 is picked by default) checks their logic (lanes, masks, tails), never
// their speed. What SIMDe 0.7 lacks is defined below from the instruction's definition
// (reduce_add_ps, which is no one instruction, in GCC's order).
#pragma once

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#include <cstdint>
#include <cstring>

#ifndef _mm512_i32gather_ps
// vgatherdps zmm: lane i = *(float*)((const char*)base + idx[i] * scale).
static inline simde__m512 cnnfast_emulated_mm512_i32gather_ps(simde__m512i idx, const void* base,
                                                              int scale) {
  int32_t offsets[16];
  float lanes[16];
  simde_mm512_storeu_si512(offsets, idx);
  for (int i = 0; i < 16; ++i)
    std::memcpy(&lanes[i], static_cast<const char*>(base) + int64_t{offsets[i]} * scale,
                sizeof(float));
  return simde_mm512_loadu_ps(lanes);
}
#define _mm512_i32gather_ps(idx, base, scale) cnnfast_emulated_mm512_i32gather_ps(idx, base, scale)
#endif

#ifndef _mm512_cvtepi32_epi64
// vpmovsxdq zmm, ymm: lane i = (int64) v.int32[i].
static inline simde__m512i cnnfast_emulated_mm512_cvtepi32_epi64(simde__m256i v) {
  int32_t in[8];
  int64_t out[8];
  simde_mm256_storeu_si256(reinterpret_cast<simde__m256i*>(in), v);
  for (int i = 0; i < 8; ++i) out[i] = in[i];
  return simde_mm512_loadu_si512(out);
}
#define _mm512_cvtepi32_epi64(v) cnnfast_emulated_mm512_cvtepi32_epi64(v)
#endif

#ifndef _mm512_reduce_add_ps
// The sum of the 16 lanes, added in the tree order GCC's own _mm512_reduce_add_ps uses (halves
// of 8, then 4, then pairs), so the emulated result rounds as the real one does.
static inline float cnnfast_emulated_mm512_reduce_add_ps(simde__m512 v) {
  float l[16];
  simde_mm512_storeu_ps(l, v);
  float h8[8], h4[4];
  for (int i = 0; i < 8; ++i) h8[i] = l[8 + i] + l[i];
  for (int i = 0; i < 4; ++i) h4[i] = h8[4 + i] + h8[i];
  return (h4[0] + h4[2]) + (h4[1] + h4[3]);
}
#define _mm512_reduce_add_ps(v) cnnfast_emulated_mm512_reduce_add_ps(v)
#endif
