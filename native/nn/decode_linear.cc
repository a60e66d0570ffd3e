#include "nn/decode_linear.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/workers.h"
#include "nn/simd.h"

namespace nodetune::nn {
namespace {

constexpr int64_t kMaxRows = 4;  // more rows: the weights are no longer the cost; oneDNN's GEMM was faster at 16

#ifdef NODETUNE_X86_KERNELS
// bfloat16 weights for dot_rows (nn/simd.h): the upper half of a float32.
struct Bf16 {
  __attribute__((target("avx2,fma"))) static __m256 load(const uint16_t* p) {
    __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
  }
  static float one(uint16_t b) {
    uint32_t bits = uint32_t(b) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
};

// y[m, j] = bf16(sum_k x[m, k] * w[j, k] + bias[j]) for output columns j in [begin, end), m < rows; x float32
// [rows, K], bias float32 or null.
__attribute__((target("avx2,fma"))) void gemv_rows(const uint16_t* w, const float* x, const float* bias,
                                                    at::BFloat16* y, int64_t rows, int64_t k, int64_t n, int64_t begin,
                                                    int64_t end) {
  float out[4];
  for (int64_t j = begin; j < end; ++j) {
    const uint16_t* wr = w + j * k;
    switch (rows) {
      case 1: dot_rows<1, Bf16>(wr, x, k, out); break;
      case 2: dot_rows<2, Bf16>(wr, x, k, out); break;
      case 3: dot_rows<3, Bf16>(wr, x, k, out); break;
      default: dot_rows<4, Bf16>(wr, x, k, out); break;
    }
    const float b = bias ? bias[j] : 0.f;
    for (int64_t m = 0; m < rows; ++m) y[m * n + j] = at::BFloat16(out[m] + b);
  }
}
#endif

}  // namespace

bool decode_linear_applies(const at::Tensor& x, const at::Tensor& w) {
#ifdef NODETUNE_X86_KERNELS
  if (!has_avx2()) return false;
  if (w.scalar_type() != at::kBFloat16 || !w.device().is_cpu() || w.dim() != 2 || !w.is_contiguous()) return false;
  if (!x.device().is_cpu() || x.dim() < 1 || x.size(-1) != w.size(1) || x.numel() / w.size(1) > kMaxRows) return false;
  return !(at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad()));
#else
  (void)x, (void)w;
  return false;
#endif
}

at::Tensor decode_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias) {
  const int64_t k = w.size(1), n = w.size(0), rows = x.numel() / k;
  auto sizes = x.sizes().vec();
  sizes.back() = n;
  at::Tensor y = at::empty(sizes, w.options());
#ifdef NODETUNE_X86_KERNELS
  // The input rows and the bias in float32 (a few KB), the output rounded once to bfloat16 in the kernel: no
  // LibTorch casts or bias add around the product.
  thread_local std::vector<float> xs, bs;
  at::Tensor xc = x.contiguous();
  xs.resize(size_t(rows * k));
  if (xc.scalar_type() == at::kFloat) std::memcpy(xs.data(), xc.data_ptr<float>(), xs.size() * sizeof(float));
  else if (xc.scalar_type() == at::kBFloat16) std::copy_n(xc.data_ptr<at::BFloat16>(), xs.size(), xs.begin());
  else std::memcpy(xs.data(), xc.to(at::kFloat).data_ptr<float>(), xs.size() * sizeof(float));
  const float* bp = nullptr;
  if (bias.defined()) {
    at::Tensor bc = bias.to(at::kFloat).contiguous();
    bs.assign(bc.data_ptr<float>(), bc.data_ptr<float>() + n);
    bp = bs.data();
  }
  const uint16_t* wp = reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>());
  const float* xp = xs.data();
  at::BFloat16* yp = y.data_ptr<at::BFloat16>();
  // nodetune's pool (core/workers.h): at::parallel_for, compiled here without -fopenmp, ran this on one thread
  // (0.5B bf16 decoding 15.3 tok/s on one thread, 21.3 on the pool's two; docs/PERFORMANCE.md).
  parallel_range(0, n, 256, [&](int64_t begin, int64_t end) { gemv_rows(wp, xp, bp, yp, rows, k, n, begin, end); });
#else
  (void)bias;
#endif
  return y;
}

}  // namespace nodetune::nn
