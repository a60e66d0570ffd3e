// x86 vector helpers for nodetune's own CPU kernels (nn/nf4.cc, nn/int8_decode.cc, nn/decode_linear.cc, the fused
// training ops): AVX2 + FMA (and AVX-512) variants are compiled beside portable ones (target attributes, no build
// flags) and chosen at run time with has_avx2() / has_avx512_vnni().
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include <cmath>
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

// Eight bfloat16 values (the upper halves of float32s) widened to float32.
__attribute__((target("avx2,fma"))) inline __m256 load_bf16x8(const uint16_t* p) {
  __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
}

// Eight float32 values rounded to bfloat16 the way c10::BFloat16 rounds (to nearest, ties to even; a NaN stays a
// quiet NaN), stored at p.
__attribute__((target("avx2,fma"))) inline void store_bf16x8(uint16_t* p, __m256 v) {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), lsb), 16);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  rounded = _mm256_blendv_epi8(rounded, _mm256_set1_epi32(0x7FC0), nan);
  // Pack the eight 32-bit lanes' low halves into eight 16-bit values (in order: packus works per 128-bit lane).
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(rounded, rounded), 0xD8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
}

// e^x for eight float32 values (Cephes' expf: x = n ln 2 + r, |r| <= ln 2 / 2, a degree-7 polynomial for e^r, then
// 2^n in the exponent bits): within 2 ulp of std::exp over [-87.3, 88.7]; below that 0 (or a denormal), above +inf;
// NaN stays NaN.
__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.72283935546875f), lo = _mm256_set1_ps(-87.33654022216797f);
  const __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ), under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  __m256 t = _mm256_max_ps(lo, _mm256_min_ps(hi, x));  // a NaN in x stays (min/max return the second operand)
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(t, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  t = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), t);
  t = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), t);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, t, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(t, t), _mm256_add_ps(t, _mm256_set1_ps(1.0f)));
  // 2^n: n in [-126, 128]; n = 128 (x near the top) as 2 * 2^127.
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i top = _mm256_cmpgt_epi32(ni, _mm256_set1_epi32(127));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, _mm256_and_si256(top, _mm256_set1_epi32(1))),
                                                       _mm256_set1_epi32(127)), 23);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  y = _mm256_blendv_ps(y, _mm256_add_ps(y, y), _mm256_castsi256_ps(top));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), over);
  return _mm256_blendv_ps(y, _mm256_setzero_ps(), under);
}

// The largest of the eight lanes (std::fmax from lane 0 up: a NaN lane is passed over).
__attribute__((target("avx2,fma"))) inline float max8(__m256 v) {
  float lanes[8];
  _mm256_storeu_ps(lanes, v);
  float m = lanes[0];
  for (int k = 1; k < 8; ++k) m = std::fmax(m, lanes[k]);
  return m;
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
