// x86 vector helpers for nodetune's own CPU kernels (nn/nf4.cc, nn/quantized_linear.cc, nn/decode_linear.cc): AVX2 + FMA variants are
// compiled beside portable ones (target attributes, no build flags) and chosen at run time with has_avx2().
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define NODETUNE_X86_KERNELS 1

namespace nodetune::nn {

inline bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

// The sum of the eight lanes.
__attribute__((target("avx2,fma"))) inline float sum8(__m256 v) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
  return _mm_cvtss_f32(h);
}

}  // namespace nodetune::nn
#endif
