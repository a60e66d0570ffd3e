#include "nn/nf4.h"

#include <ATen/Dispatch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/workers.h"
#include "nn/simd.h"


namespace nodetune::nn {

const std::array<float, 16>& nf4_code() {
  static const std::array<float, 16> code = {
      -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
      -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
      0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
      0.7229568362236023f, 1.0f};
  return code;
}

const std::vector<float>& dynamic_code() {
  static const std::vector<float> code = [] {
    // Seven decimal exponents, 10^-6 .. 10^0; exponent i has 2^i fraction values: the midpoints of 2^i + 1
    // evenly spaced points in [0.1, 1], with both signs. Plus 0 and 1: 2 * 127 + 2 = 256 values.
    std::vector<float> v;
    for (int i = 0; i < 7; ++i) {
      const int points = (1 << i) + 1;
      std::vector<float> bounds(points);
      for (int k = 0; k < points; ++k) bounds[k] = 0.1f + (1.0f - 0.1f) * float(k) / float(points - 1);
      const double scale = std::pow(10.0, double(i - 6));
      for (int k = 0; k + 1 < points; ++k) {
        const float mean = (bounds[k] + bounds[k + 1]) / 2.0f;
        v.push_back(float(scale * mean));
        v.push_back(float(-scale * mean));
      }
    }
    v.push_back(0.0f);
    v.push_back(1.0f);
    std::sort(v.begin(), v.end());
    return v;
  }();
  return code;
}

int nearest_code(const float* table, int size, float x) {
  const float* it = std::lower_bound(table, table + size, x);
  if (it == table) return 0;
  if (it == table + size) return size - 1;
  const int hi = int(it - table);
  return (x - table[hi - 1] <= table[hi] - x) ? hi - 1 : hi;
}

namespace {

// The 15 midpoints between neighbouring NF4 values.
const std::array<float, 15>& nf4_midpoints() {
  static const std::array<float, 15> mids = [] {
    std::array<float, 15> m{};
    for (int i = 0; i < 15; ++i) m[i] = (nf4_code()[i] + nf4_code()[i + 1]) / 2.0f;
    return m;
  }();
  return mids;
}

// NF4 index of a value in [-1, 1]: the nearest code, i.e. how many midpoints lie below it (a tie rounds down,
// as nearest_code does).
inline uint8_t nf4_index(float x, const std::array<float, 15>& mids) {
  int idx = 0;
  for (float m : mids) idx += x > m;
  return uint8_t(idx);
}

#ifdef NODETUNE_X86_KERNELS
// Eight NF4 values from four bytes (high nibble first): the bytes spread to eight lanes, looked up in the 16-entry
// code as two 8-entry permutes and a blend.
__attribute__((target("avx2,fma"))) inline __m256 values8(const uint8_t* bytes, __m256 low, __m256 high) {
  int32_t four;
  std::memcpy(&four, bytes, 4);
  const __m256i v = _mm256_permutevar8x32_epi32(_mm256_cvtepu8_epi32(_mm_cvtsi32_si128(four)), _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
  const __m256i idx = _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_setr_epi32(4, 0, 4, 0, 4, 0, 4, 0)), _mm256_set1_epi32(15));
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(low, idx), _mm256_permutevar8x32_ps(high, idx),
                          _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7))));
}

__attribute__((target("avx2,fma"))) float dot_row_avx2(const float* x, const uint8_t* bytes, const float* code,
                                                       const float* scale, int64_t k, int64_t bs) {
  const __m256 low = _mm256_loadu_ps(code), high = _mm256_loadu_ps(code + 8);
  __m256 total = _mm256_setzero_ps();
  for (int64_t b = 0; b * bs < k; ++b) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t j = 0; j < bs; j += 8)
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + b * bs + j), values8(bytes + (b * bs + j) / 2, low, high), acc);
    total = _mm256_fmadd_ps(acc, _mm256_set1_ps(scale[b]), total);
  }
  return sum8(total);
}

// `count` (a multiple of 8) values from `bytes`, times `a`, as float32 or (round to nearest even) bfloat16 bits.
__attribute__((target("avx2,fma"))) void dequantize8_avx2(const uint8_t* bytes, int64_t count, float a, const float* code,
                                                           float* out_f, uint16_t* out_bf) {
  const __m256 low = _mm256_loadu_ps(code), high = _mm256_loadu_ps(code + 8), scale = _mm256_set1_ps(a);
  for (int64_t j = 0; j < count; j += 8) {
    const __m256 v = _mm256_mul_ps(values8(bytes + j / 2, low, high), scale);
    if (out_f) {
      _mm256_storeu_ps(out_f + j, v);
      continue;
    }
    __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    u = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), lsb)), 16);
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(u, u), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out_bf + j), _mm256_castsi256_si128(packed));
  }
}
#endif

float dot_row(const float* x, const uint8_t* bytes, const float* code, const float* scale, int64_t k, int64_t bs) {
  float s = 0.0f;
  for (int64_t b = 0; b * bs < k; ++b) {
    float acc[2] = {0, 0};
    const uint8_t* p = bytes + b * bs / 2;
    const float* xb = x + b * bs;
    for (int64_t j = 0; j < bs / 2; ++j) {
      acc[0] += xb[2 * j] * code[p[j] >> 4];
      acc[1] += xb[2 * j + 1] * code[p[j] & 15];
    }
    s += (acc[0] + acc[1]) * scale[b];
  }
  return s;
}

}  // namespace

float nf4_dot_row(const float* x, const uint8_t* bytes, const float* code, const float* scale, int64_t k, int64_t bs) {
#ifdef NODETUNE_X86_KERNELS
  if (has_avx2()) return dot_row_avx2(x, bytes, code, scale, k, bs);
#endif
  return dot_row(x, bytes, code, scale, k, bs);
}

void nf4_quantize_range(const float* src, int64_t first, int64_t n, int64_t blocksize, uint8_t* packed, float* absmax) {
  const int64_t blocks = (n + blocksize - 1) / blocksize;
  const auto& mids = nf4_midpoints();
  parallel_range(0, blocks, 256, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t s = b * blocksize, e = std::min(n, s + blocksize);
      float amax = 0.0f;
      for (int64_t i = s; i < e; ++i) amax = std::max(amax, std::fabs(src[i]));
      absmax[(first + s) / blocksize] = amax;
      const float inv = amax > 0.0f ? 1.0f / amax : 0.0f;
      for (int64_t i = s; i < e; i += 2) {
        const uint8_t hi = nf4_index(src[i] * inv, mids);
        const uint8_t lo = i + 1 < e ? nf4_index(src[i + 1] * inv, mids) : uint8_t(0);
        packed[(first + i) / 2] = uint8_t(hi << 4 | lo);
      }
    }
  });
}

void nf4_double_quantize(QuantizedWeight& q, const at::Tensor& absmax) {
  const int64_t blocks = absmax.numel(), nb = q.nested_blocksize;
  const float* a = absmax.data_ptr<float>();
  double sum = 0.0;
  for (int64_t i = 0; i < blocks; ++i) sum += a[i];
  const float offset = blocks > 0 ? float(sum / double(blocks)) : 0.0f;
  const auto& code = dynamic_code();
  q.offset = offset;
  q.absmax = at::empty({blocks}, at::kByte);
  q.nested_absmax = at::empty({(blocks + nb - 1) / nb}, at::kFloat);
  q.nested_code = at::tensor(code, at::kFloat);
  uint8_t* out = q.absmax.data_ptr<uint8_t>();
  float* nested = q.nested_absmax.data_ptr<float>();
  for (int64_t g = 0; g * nb < blocks; ++g) {
    const int64_t s = g * nb, e = std::min(blocks, s + nb);
    float amax = 0.0f;
    for (int64_t i = s; i < e; ++i) amax = std::max(amax, std::fabs(a[i] - offset));
    nested[g] = amax;
    const float inv = amax > 0.0f ? 1.0f / amax : 0.0f;
    for (int64_t i = s; i < e; ++i) out[i] = uint8_t(nearest_code(code.data(), int(code.size()), (a[i] - offset) * inv));
  }
}

void nf4_block_absmax(const QuantizedWeight& q, int64_t b0, int64_t b1, float* out) {
  if (!q.nested()) {
    const float* a = q.absmax.data_ptr<float>();
    std::copy(a + b0, a + b1, out);
    return;
  }
  const uint8_t* a = q.absmax.data_ptr<uint8_t>();
  const float* code = q.nested_code.data_ptr<float>();
  const float* nested = q.nested_absmax.data_ptr<float>();
  const float offset = float(q.offset);
  for (int64_t b = b0; b < b1; ++b) out[b - b0] = code[a[b]] * nested[b / q.nested_blocksize] + offset;
}

void nf4_dequantize_range_cpu(const QuantizedWeight& q, int64_t e0, int64_t e1, const at::Tensor& out) {
  const int64_t bs = q.blocksize;
  const int64_t b0 = e0 / bs, b1 = (e1 + bs - 1) / bs;
  std::vector<float> scale(size_t(b1 - b0));
  nf4_block_absmax(q, b0, b1, scale.data());
  const uint8_t* packed = q.packed.data_ptr<uint8_t>();
  const float* code = q.code.data_ptr<float>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, out.scalar_type(), "nf4_dequantize", [&] {
    scalar_t* dst = out.data_ptr<scalar_t>();
    parallel_range(b0, b1, 256, [&](int64_t lo, int64_t hi) {
      for (int64_t b = lo; b < hi; ++b) {
        const int64_t s = std::max(e0, b * bs), e = std::min(e1, (b + 1) * bs);
        const float a = scale[size_t(b - b0)];
        int64_t i = s;
        if (i & 1) dst[i - e0] = scalar_t(code[packed[i >> 1] & 0x0F] * a), ++i;
#ifdef NODETUNE_X86_KERNELS
        constexpr bool f32 = std::is_same_v<scalar_t, float>, bf16 = std::is_same_v<scalar_t, c10::BFloat16>;
        if constexpr (f32 || bf16) {
          const int64_t count = (e - i) / 8 * 8;
          if (count > 0 && has_avx2()) {
            dequantize8_avx2(packed + i / 2, count, a, code, f32 ? reinterpret_cast<float*>(dst + (i - e0)) : nullptr,
                             bf16 ? reinterpret_cast<uint16_t*>(dst + (i - e0)) : nullptr);
            i += count;
          }
        }
#endif
        for (; i + 1 < e; i += 2) {  // both values of a byte
          const uint8_t byte = packed[i >> 1];
          dst[i - e0] = scalar_t(code[byte >> 4] * a);
          dst[i + 1 - e0] = scalar_t(code[byte & 0x0F] * a);
        }
        if (i < e) dst[i - e0] = scalar_t(code[packed[i >> 1] >> 4] * a);
      }
    });
  });
}

at::Tensor nf4_dequantize_range(const QuantizedWeight& q, int64_t e0, int64_t e1, c10::ScalarType dtype) {
  const int64_t bs = q.blocksize;
  const int64_t b0 = e0 / bs, b1 = (e1 + bs - 1) / bs;
  const int64_t start = b0 * bs;  // even: block sizes are even
  const int64_t end = std::min(q.numel(), b1 * bs);
  at::Tensor bytes = q.packed.narrow(0, start / 2, (end + 1) / 2 - start / 2).to(at::kLong);
  at::Tensor idx = at::stack({bytes.__rshift__(4), bytes.bitwise_and(15)}, 1).reshape({-1});
  at::Tensor vals = q.code.index_select(0, idx);
  at::Tensor scale;
  if (q.nested()) {
    at::Tensor a = q.absmax.narrow(0, b0, b1 - b0).to(at::kLong);
    at::Tensor groups = at::arange(b0, b1, a.options()).floor_divide(q.nested_blocksize);
    scale = q.nested_code.index_select(0, a) * q.nested_absmax.index_select(0, groups) + q.offset;
  } else {
    scale = q.absmax.narrow(0, b0, b1 - b0);
  }
  at::Tensor per = scale.repeat_interleave(bs).narrow(0, 0, vals.size(0));
  return (vals * per).narrow(0, e0 - start, e1 - e0).to(dtype);
}

}  // namespace nodetune::nn
