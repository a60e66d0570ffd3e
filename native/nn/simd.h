// x86 vector helpers for nodetune's own CPU kernels (nn/nf4.cc, nn/int8_decode.cc, nn/decode_linear.cc): AVX2 + FMA (and
// AVX-512) variants are compiled beside portable ones (target attributes, no build flags) and chosen at run time with
// has_avx2() / has_avx512_vnni().
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include <cstdint>
#define NODETUNE_X86_KERNELS 1

namespace nodetune::nn {

inline bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

// AVX512-VNNI (vpdpbusd) on 256-bit registers (AVX512VL): the q8 int8 decoding kernel (nn/int8_decode.cc).
inline bool has_avx512_vnni() {
  static const bool yes = __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") && has_avx2();
  return yes;
}

// The sum of the eight lanes.
__attribute__((target("avx2,fma"))) inline float sum8(__m256 v) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
  return _mm_cvtss_f32(h);
}

// out[m] = sum_i x[m * k + i] * float(w[i]) for MB rows of x (float32 [MB, k]) and one weight row of Widen's
// element type: Widen::load(p) gives eight weights as floats, Widen::one(v) one. Accumulators stay in registers (MB is
// a constant); one row: 32 weights per iteration into four independent accumulators, so the loads, not the fused
// multiply-add's latency, set the pace; more rows share each widened weight.
template <int MB, class Widen, class T>
__attribute__((target("avx2,fma"))) inline void dot_rows(const T* w, const float* x, int64_t k, float* out) {
  int64_t i = 0;
  if constexpr (MB == 1) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (; i + 32 <= k; i += 32) {
      a0 = _mm256_fmadd_ps(Widen::load(w + i), _mm256_loadu_ps(x + i), a0);
      a1 = _mm256_fmadd_ps(Widen::load(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
      a2 = _mm256_fmadd_ps(Widen::load(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
      a3 = _mm256_fmadd_ps(Widen::load(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= k; i += 8) a0 = _mm256_fmadd_ps(Widen::load(w + i), _mm256_loadu_ps(x + i), a0);
    float s = sum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < k; ++i) s += Widen::one(w[i]) * x[i];
    out[0] = s;
  } else {
    __m256 acc[MB];
    for (int m = 0; m < MB; ++m) acc[m] = _mm256_setzero_ps();
    for (; i + 8 <= k; i += 8) {
      const __m256 wv = Widen::load(w + i);
      for (int m = 0; m < MB; ++m) acc[m] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + m * k + i), acc[m]);
    }
    for (int m = 0; m < MB; ++m) {
      float s = sum8(acc[m]);
      for (int64_t t = i; t < k; ++t) s += Widen::one(w[t]) * x[m * k + t];
      out[m] = s;
    }
  }
}

}  // namespace nodetune::nn
#endif
