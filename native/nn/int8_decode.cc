#include "nn/int8_decode.h"


#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/workers.h"
#include "nn/simd.h"

namespace nodetune::nn {
namespace {

// In order of preference ("auto": the first this CPU runs). Without AVX2 the float loop, not the portable q8 loop
// (no faster there, and exact).
enum Kernel : int { kQ8Vnni, kQ8Avx2, kExactAvx2, kExact, kQ8, kKernels };
const char* const kNames[kKernels] = {"q8-vnni", "q8-avx2", "exact-avx2", "exact", "q8"};

constexpr int64_t kBlock = 32;  // input elements per q8 scale (llama.cpp's Q8_0); q8 rows are zero-padded to a multiple

bool runs(int kernel) {
#ifdef NODETUNE_X86_KERNELS
  if (kernel == kQ8Vnni) return has_avx512_vnni();
  if (kernel == kQ8Avx2 || kernel == kExactAvx2) return has_avx2();
#endif
  return kernel == kQ8 || kernel == kExact;
}

int parse(const std::string& name, const std::string& where) {
  if (name == "auto") {
    for (int k = 0; k < kKernels; ++k)
      if (runs(k)) return k;
  }
  for (int k = 0; k < kKernels; ++k)
    if (name == kNames[k]) {
      if (!runs(k)) fail("ERR_ARGUMENT", where + ": this CPU cannot run the int8 decoding kernel '" + name + "'");
      return k;
    }
  fail("ERR_ARGUMENT", where + ": unknown int8 decoding kernel '" + name +
                           "' (expected auto, q8-vnni, q8-avx2, exact-avx2, exact or q8)");
}

std::atomic<int>& current() {
  static std::atomic<int> kernel{[] {
    const char* env = std::getenv("NODETUNE_INT8_DECODE");
    return parse(env && *env ? env : "auto", "NODETUNE_INT8_DECODE");
  }()};
  return kernel;
}

// The input rows rounded to int8 in blocks of kBlock (q8).
struct Q8Rows {
  int64_t k = 0, kpad = 0;
  std::vector<int8_t> q;  // [m, kpad], zero past k
  std::vector<float> d;   // [m, kpad / kBlock]: absmax / 127 of each block

  const int8_t* row(int64_t m) const { return q.data() + m * kpad; }
  const float* scales(int64_t m) const { return d.data() + m * (kpad / kBlock); }
};

void quantize_rows(const float* x, int64_t m, int64_t k, Q8Rows& out) {
  out.k = k;
  out.kpad = (k + kBlock - 1) / kBlock * kBlock;
  const int64_t blocks = out.kpad / kBlock;
  out.q.assign(size_t(m * out.kpad), 0);
  out.d.assign(size_t(m * blocks), 0.0f);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t lo = b * kBlock, hi = std::min(k, lo + kBlock);
      float amax = 0.0f;
      for (int64_t i = lo; i < hi; ++i) amax = std::max(amax, std::fabs(x[r * k + i]));
      const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      for (int64_t i = lo; i < hi; ++i)
        out.q[size_t(r * out.kpad + i)] = int8_t(std::clamp(std::nearbyint(x[r * k + i] * inv), -127.0f, 127.0f));
      out.d[size_t(r * blocks + b)] = amax / 127.0f;
    }
}

// Each kernel: y[r * n + o] for output rows o in [lo, hi) and MB input rows.

template <int MB>
void q8_rows(const Q8Rows& x, const int8_t* w, const float* scale, int64_t n, int64_t lo, int64_t hi, float* y) {
  const int64_t k = x.k;
  for (int64_t o = lo; o < hi; ++o) {
    const int8_t* wr = w + o * k;
    for (int r = 0; r < MB; ++r) {
      const int8_t* q = x.row(r);
      float s = 0.0f;
      for (int64_t b0 = 0; b0 < k; b0 += kBlock) {
        int32_t t = 0;
        for (int64_t i = b0; i < std::min(k, b0 + kBlock); ++i) t += int32_t(q[i]) * int32_t(wr[i]);
        s += x.scales(r)[b0 / kBlock] * float(t);
      }
      y[r * n + o] = s * scale[o];
    }
  }
}

template <int MB>
void exact_rows(const float* x, const int8_t* w, const float* scale, int64_t k, int64_t n, int64_t lo, int64_t hi, float* y) {
  for (int64_t o = lo; o < hi; ++o) {
    const int8_t* wr = w + o * k;
    for (int r = 0; r < MB; ++r) {
      const float* xr = x + r * k;
      float acc[8] = {0};
      int64_t i = 0;
      for (; i + 8 <= k; i += 8)
        for (int t = 0; t < 8; ++t) acc[t] += xr[i + t] * float(wr[i + t]);
      float s = 0.0f;
      for (float a : acc) s += a;
      for (; i < k; ++i) s += xr[i] * float(wr[i]);
      y[r * n + o] = s * scale[o];
    }
  }
}

#ifdef NODETUNE_X86_KERNELS
// int8 weights for dot_rows (nn/simd.h): eight widened by one sign-extending load of 8 bytes and a conversion.
struct Int8 {
  __attribute__((target("avx2,fma"))) static __m256 load(const int8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static float one(int8_t v) { return float(v); }
};

template <int MB>
__attribute__((target("avx2,fma"))) void exact_rows_avx2(const float* x, const int8_t* w, const float* scale, int64_t k,
                                                          int64_t n, int64_t lo, int64_t hi, float* y) {
  float out[MB];
  for (int64_t o = lo; o < hi; ++o) {
    dot_rows<MB, Int8>(w + o * k, x, k, out);
    for (int r = 0; r < MB; ++r) y[r * n + o] = out[r] * scale[o];
  }
}

// One block of 32 weights times 32 input bytes, as eight int32 sums of four products each: |w| (unsigned) times x with
// w's sign (signed), so the unsigned-by-signed instructions take int8 x int8.
// AVX2: vpmaddubsw sums pairs to int16 (at most 2 * 127 * 127: no saturation), vpmaddwd pairs of those to int32.
struct Maddubs {
  __attribute__((target("avx2,fma"), always_inline)) static inline __m256i dot(__m256i aw, __m256i sx) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), _mm256_set1_epi16(1));
  }
};
// AVX512-VNNI on 256-bit registers (AVX512VL): vpdpbusd sums the four products into int32 in one instruction. Written as
// assembly so that every function of the row loop keeps the AVX2 target (a function compiled for AVX-512 cannot be
// inlined into an AVX2 one, nor the reverse); callers check has_avx512_vnni(). Its 512-bit form (64 weights, two
// blocks, a scale per lane) streamed the weights slower here (AMD Zen 4: 8-9 GB/s against 10-11, docs/PERFORMANCE.md).
struct Dpbusd {
  __attribute__((target("avx2,fma"), always_inline)) static inline __m256i dot(__m256i aw, __m256i sx) {
    __m256i sum = _mm256_setzero_si256();
    asm("vpdpbusd %2, %1, %0" : "+x"(sum) : "x"(aw), "x"(sx));
    return sum;
  }
};

// The block at i for MB input rows: the int32 sums converted and scaled by each row's block scale.
template <int MB, class Dot>
__attribute__((target("avx2,fma"), always_inline)) inline void q8_block(__m256i wv, const Q8Rows& x, int64_t i, __m256* acc) {
  const __m256i aw = _mm256_abs_epi8(wv);
  for (int r = 0; r < MB; ++r) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.row(r) + i));
    const __m256i p = Dot::dot(aw, _mm256_sign_epi8(xv, wv));
    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(x.scales(r)[i / kBlock]), acc[r]);
  }
}

template <int MB, class Dot>
__attribute__((target("avx2,fma"), always_inline)) inline void q8_rows_x86(const Q8Rows& x, const int8_t* w,
                                                                          const float* scale, int64_t n, int64_t lo,
                                                                          int64_t hi, float* y) {
  const int64_t k = x.k;
  for (int64_t o = lo; o < hi; ++o) {
    const int8_t* wr = w + o * k;
    __m256 a[MB], b[MB];  // two chains: consecutive blocks do not wait for each other's multiply-add
    for (int r = 0; r < MB; ++r) a[r] = b[r] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 * kBlock <= k; i += 2 * kBlock) {
      q8_block<MB, Dot>(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + i)), x, i, a);
      q8_block<MB, Dot>(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + i + kBlock)), x, i + kBlock, b);
    }
    for (; i < k; i += kBlock) {  // a last whole block, or the row's tail (no read past the row; the input is zero there)
      alignas(32) int8_t tail[kBlock] = {0};
      std::memcpy(tail, wr + i, size_t(std::min(kBlock, k - i)));
      q8_block<MB, Dot>(_mm256_load_si256(reinterpret_cast<const __m256i*>(tail)), x, i, a);
    }
    for (int r = 0; r < MB; ++r) y[r * n + o] = sum8(_mm256_add_ps(a[r], b[r])) * scale[o];
  }
}

// The same loop with each block product.
template <int MB>
__attribute__((target("avx2,fma"))) void q8_rows_avx2(const Q8Rows& x, const int8_t* w, const float* scale, int64_t n,
                                                      int64_t lo, int64_t hi, float* y) {
  q8_rows_x86<MB, Maddubs>(x, w, scale, n, lo, hi, y);
}

template <int MB>
__attribute__((target("avx2,fma"))) void q8_rows_vnni(const Q8Rows& x, const int8_t* w, const float* scale, int64_t n,
                                                      int64_t lo, int64_t hi, float* y) {
  q8_rows_x86<MB, Dpbusd>(x, w, scale, n, lo, hi, y);
}
#endif

template <int MB>
void rows(int kernel, const float* xf, const Q8Rows& xq, const int8_t* w, const float* scale, int64_t k, int64_t n,
          int64_t lo, int64_t hi, float* y) {
  switch (kernel) {
#ifdef NODETUNE_X86_KERNELS
    case kQ8Vnni: return q8_rows_vnni<MB>(xq, w, scale, n, lo, hi, y);
    case kQ8Avx2: return q8_rows_avx2<MB>(xq, w, scale, n, lo, hi, y);
    case kExactAvx2: return exact_rows_avx2<MB>(xf, w, scale, k, n, lo, hi, y);
#endif
    case kQ8: return q8_rows<MB>(xq, w, scale, n, lo, hi, y);
    default: return exact_rows<MB>(xf, w, scale, k, n, lo, hi, y);
  }
}

}  // namespace

std::vector<std::string> int8_decode_kernels() {
  std::vector<std::string> out;
  for (int k = 0; k < kKernels; ++k)
    if (runs(k)) out.emplace_back(kNames[k]);
  return out;
}

std::string int8_decode_kernel() { return kNames[current().load()]; }

std::string set_int8_decode_kernel(const std::string& name) {
  return kNames[current().exchange(parse(name, "int8 decoding kernel"))];
}

void int8_decode_product(const float* x, int64_t m, const int8_t* w, const float* scale, int64_t k, int64_t n, float* y,
                         const std::string& kernel) {
  if (m < 1 || m > kInt8DecodeMaxRows) fail("ERR_SHAPE", "int8 decoding product takes 1 to 4 input rows, got " + std::to_string(m));
  const int kind = kernel.empty() ? current().load() : parse(kernel, "int8 decoding product");
  static thread_local Q8Rows buffer;
  Q8Rows& xq = buffer;  // the caller's buffer, by reference: a thread_local named inside the lambda would be each thread's own
  if (kind != kExact && kind != kExactAvx2) quantize_rows(x, m, k, xq);
  auto body = [&](int64_t lo, int64_t hi) {
    switch (m) {
      case 1: return rows<1>(kind, x, xq, w, scale, k, n, lo, hi, y);
      case 2: return rows<2>(kind, x, xq, w, scale, k, n, lo, hi, y);
      case 3: return rows<3>(kind, x, xq, w, scale, k, n, lo, hi, y);
      default: return rows<4>(kind, x, xq, w, scale, k, n, lo, hi, y);
    }
  };
  // nodetune's pool (core/workers.h), as the bf16 kernel (nn/decode_linear.cc): at::parallel_for, compiled here
  // without -fopenmp, ran on one thread. (A pool that started threads per call was slower on the shared machine;
  // the persistent pool claims pieces one at a time: 0.5B int8 decoding 24.7 -> 29.9 tok/s, docs/PERFORMANCE.md.)
  parallel_range(0, n, 256, body);
}

}  // namespace nodetune::nn
