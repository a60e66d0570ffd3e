#include "nn/cross_entropy_rows.h"

#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/workers.h"
#include "nn/fused_rows.h"

namespace nodetune::nn {
namespace {

#ifdef NODETUNE_X86_KERNELS
// Whether rows of T keep exp(x - max) for the gradient (row() below).
template <class T>
constexpr bool kOneExpPass = std::is_same<T, at::BFloat16>::value;

// One row: returns logsumexp(x) - x[t]; with `gradient` (and scale != 0) x becomes (softmax(x) - one_hot(t)) * scale.
// bfloat16 rows keep exp(x - max) in `e` (v floats of scratch) between the sum and the gradient: one exp pass, not
// two (the kernel's share of a 0.5B LoRA bf16 step's CPU samples 1.38% -> 0.82%). float32 rows take the gradient as
// exp(x - lse), a second exp pass: the same values within an ulp, but float32 training results (the demo's, in the
// README) were measured with these.
template <class T>
__attribute__((target("avx2,fma"))) float row(T* x, int64_t v, int64_t t, float scale, bool gradient, float* e) {
  using E = Lanes<T>;
  int64_t i = 0;
  __m256 mx = _mm256_set1_ps(-__builtin_inff());
  for (; i + 8 <= v; i += 8) mx = _mm256_max_ps(mx, E::load(x + i));
  float m = max8(mx);
  for (; i < v; ++i) m = std::fmax(m, float(x[i]));
  if (std::isinf(m)) m = 0.0f;  // every value -inf (or +inf somewhere): let the sums give inf / NaN as log_softmax does
  const __m256 mv = _mm256_set1_ps(m);
  const bool keep = kOneExpPass<T> && gradient && scale != 0.0f;
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  for (i = 0; i + 16 <= v; i += 16) {
    const __m256 a = exp8(_mm256_sub_ps(E::load(x + i), mv)), b = exp8(_mm256_sub_ps(E::load(x + i + 8), mv));
    if (keep) _mm256_storeu_ps(e + i, a), _mm256_storeu_ps(e + i + 8, b);
    s0 = _mm256_add_ps(s0, a);
    s1 = _mm256_add_ps(s1, b);
  }
  for (; i + 8 <= v; i += 8) {
    const __m256 a = exp8(_mm256_sub_ps(E::load(x + i), mv));
    if (keep) _mm256_storeu_ps(e + i, a);
    s0 = _mm256_add_ps(s0, a);
  }
  float s = sum8(_mm256_add_ps(s0, s1));
  for (; i < v; ++i) {
    const float a = std::exp(float(x[i]) - m);
    if (keep) e[i] = a;
    s += a;
  }
  const float lse = m + std::log(s);
  const float loss = lse - float(x[t]);
  if (!gradient) return loss;
  if (scale == 0.0f) {
    std::memset(static_cast<void*>(x), 0, sizeof(T) * v);
    return loss;
  }
  if (keep) {
    const float k = scale / s;
    const __m256 kv = _mm256_set1_ps(k);
    for (i = 0; i + 8 <= v; i += 8) E::store(x + i, _mm256_mul_ps(_mm256_loadu_ps(e + i), kv));
    for (; i < v; ++i) x[i] = T(e[i] * k);
    x[t] = T((e[t] / s - 1.0f) * scale);  // the target's own entry: (p - 1) * scale
    return loss;
  }
  const __m256 lv = _mm256_set1_ps(lse), sv = _mm256_set1_ps(scale);
  for (i = 0; i + 8 <= v; i += 8) E::store(x + i, _mm256_mul_ps(exp8(_mm256_sub_ps(E::load(x + i), lv)), sv));
  for (; i < v; ++i) x[i] = T(std::exp(float(x[i]) - lse) * scale);
  // The target's own entry from the logit (the loop above overwrote it): (p - 1) * scale.
  x[t] = T((std::exp(-loss) - 1.0f) * scale);
  return loss;
}

template <class T>
float rows(at::Tensor& logits, const int64_t* target, const float* scale, bool gradient) {
  const int64_t r = logits.size(0), v = logits.size(1);
  T* base = logits.data_ptr<T>();
  std::vector<float> losses(r);
  // nodetune's pool (core/workers.h): at::parallel_for compiled without -fopenmp runs on the calling thread alone.
  parallel_range(0, r, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> e(kOneExpPass<T> && gradient ? size_t(v) : 0);
    for (int64_t i = begin; i < end; ++i) losses[i] = row<T>(base + i * v, v, target[i], scale[i], gradient, e.data());
  });
  double total = 0;
  for (int64_t i = 0; i < r; ++i)
    if (scale[i] != 0.0f || std::isnan(scale[i])) total += double(scale[i]) * losses[i];
  return float(total);
}
#endif

}  // namespace

at::Tensor cross_entropy_rows(at::Tensor& logits, const at::Tensor& target, const at::Tensor& scale, bool gradient) {
#ifdef NODETUNE_X86_KERNELS
  if (logits.dim() != 2 || !logits.is_contiguous() || !logits.device().is_cpu() || target.numel() != logits.size(0) ||
      scale.numel() != logits.size(0))
    fail("ERR_SHAPE", "cross_entropy_rows: logits must be a contiguous [rows, vocab] CPU tensor with one target and scale per row");
  at::Tensor t = target.to(at::kLong).contiguous(), s = scale.to(at::kFloat).contiguous();
  const int64_t v = logits.size(1);
  const int64_t* tp = t.data_ptr<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (tp[i] < 0 || tp[i] >= v)
      fail("ERR_DATA", "label id " + std::to_string(tp[i]) + " (row " + std::to_string(i) + ") is outside the vocabulary of " +
                           std::to_string(v) + " tokens");
  float total = logits.scalar_type() == at::kBFloat16 ? rows<at::BFloat16>(logits, tp, s.data_ptr<float>(), gradient)
                                                       : rows<float>(logits, tp, s.data_ptr<float>(), gradient);
  return at::full({}, total, at::TensorOptions().dtype(at::kFloat));
#else
  (void)logits, (void)target, (void)scale, (void)gradient;
  fail("ERR_STATE", "cross_entropy_rows needs an x86 CPU with AVX2 (train_fusions_apply)");
#endif
}

}  // namespace nodetune::nn
