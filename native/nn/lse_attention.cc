#include "nn/lse_attention.h"

#include <ATen/core/grad_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/workers.h"
#include "nn/fused_rows.h"
#include "nn/train_fusions.h"

namespace nodetune::nn {
namespace {

#ifdef NODETUNE_X86_KERNELS
// The rows of scores [R, S] with their additive mask rows: row r of the [B, Hkv, G x T] rows uses mask row
// (r / (Hkv G T) if the mask has a batch, else 0, r % T), and only its first `used` columns: those after the last
// column the mask allows (a causal mask's upper triangle) have probability 0 and are written as 0, not computed.
struct Rows {
  int64_t count, width, t, per_batch;
  const float* mask;  // [Bm, T, S] float32, or null
  int64_t mask_batches;
  std::vector<int64_t> used;  // per mask row

  // The rows of qg [B, Hkv, G T, D] against `width` keys, T query positions, the mask as lse_attention made it.
  Rows(const at::Tensor& qg, int64_t width, int64_t t, const at::Tensor& m)
      : count(qg.size(0) * qg.size(1) * qg.size(2)), width(width), t(t), per_batch(qg.size(1) * qg.size(2)),
        mask(m.defined() ? m.data_ptr<float>() : nullptr), mask_batches(m.defined() ? m.size(0) : 0) {
    for (int64_t r = 0; mask && r < mask_batches * t; ++r) {
      const float* row = mask + r * width;
      int64_t n = width;
      while (n > 0 && row[n - 1] < kMasked) --n;
      used.push_back(n > 0 ? n : width);  // every column masked: all of them, as the softmax of equal logits
    }
  }
  int64_t mask_index(int64_t r) const { return (mask_batches > 1 ? r / per_batch : 0) * t + r % t; }
  const float* mask_row(int64_t r) const { return mask ? mask + mask_index(r) * width : nullptr; }
  int64_t columns(int64_t r) const { return mask ? used[size_t(mask_index(r))] : width; }

  // Below this an additive mask entry masks (nn/layers.cc additive_mask: the dtype's lowest value).
  static constexpr float kMasked = -1e30f;
};

// z = x * scale + m for eight lanes at i.
template <class T>
__attribute__((target("avx2,fma"))) inline __m256 logit8(const T* x, const float* m, __m256 sv, int64_t i) {
  const __m256 z = _mm256_mul_ps(Lanes<T>::load(x + i), sv);
  return m ? _mm256_add_ps(z, _mm256_loadu_ps(m + i)) : z;
}

template <class T>
inline float logit1(const T* x, const float* m, float scale, int64_t i) {
  return float(x[i]) * scale + (m ? m[i] : 0.f);
}

template <class T>
void zero_tail(T* x, int64_t from, int64_t s) {
  if (from < s) std::memset(static_cast<void*>(x + from), 0, sizeof(T) * size_t(s - from));
}

// One row of s scores, in place: x becomes softmax(x * scale + m) over its first n columns (0 after them). The row's
// log-sum-exp goes to lse as two floats, the largest logit and the log of the sum of exp(logit - largest), kept
// apart so that backward subtracts the largest first: a row whose every key is masked has logits of about -3.4e38,
// where the log of the sum (log n, its probabilities being uniform) would vanish in one float. e: n floats of scratch.
template <class T>
__attribute__((target("avx2,fma"))) void softmax_row(T* x, const float* m, int64_t n, int64_t s, float scale, float* e,
                                                     float* lse) {
  const __m256 sv = _mm256_set1_ps(scale);
  __m256 mx = _mm256_set1_ps(-__builtin_inff());
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) mx = _mm256_max_ps(mx, logit8(x, m, sv, i));
  float top = max8(mx);
  for (; i < n; ++i) top = std::fmax(top, logit1(x, m, scale, i));
  if (std::isinf(top)) top = 0.f;  // every logit -inf: the sum is 0 and the row NaN, as LibTorch's softmax gives
  const __m256 tv = _mm256_set1_ps(top);
  __m256 acc = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 v = exp8(_mm256_sub_ps(logit8(x, m, sv, i), tv));
    _mm256_storeu_ps(e + i, v);
    acc = _mm256_add_ps(acc, v);
  }
  float sum = sum8(acc);
  for (; i < n; ++i) sum += (e[i] = std::exp(logit1(x, m, scale, i) - top));
  const float inv = 1.f / sum;
  const __m256 iv = _mm256_set1_ps(inv);
  for (i = 0; i + 8 <= n; i += 8) Lanes<T>::store(x + i, _mm256_mul_ps(_mm256_loadu_ps(e + i), iv));
  for (; i < n; ++i) x[i] = T(e[i] * inv);
  zero_tail(x, n, s);
  lse[0] = top, lse[1] = std::log(sum);
}

// The same probabilities from the row's log-sum-exp (backward's recomputation): x = exp(x * scale + m - lse).
template <class T>
__attribute__((target("avx2,fma"))) void probability_row(T* x, const float* m, int64_t n, int64_t s, float scale,
                                                         const float* lse) {
  const __m256 sv = _mm256_set1_ps(scale), tv = _mm256_set1_ps(lse[0]), lv = _mm256_set1_ps(lse[1]);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) Lanes<T>::store(x + i, exp8(_mm256_sub_ps(_mm256_sub_ps(logit8(x, m, sv, i), tv), lv)));
  for (; i < n; ++i) x[i] = T(std::exp((logit1(x, m, scale, i) - lse[0]) - lse[1]));
  zero_tail(x, n, s);
}

// One row of softmax's backward, in place: dp becomes p * (dp - sum(p * dp)) * scale (the gradient of the logits
// x * scale + m with respect to x); 0 after the first n columns, where p is 0.
template <class T>
__attribute__((target("avx2,fma"))) void softmax_grad_row(const T* p, T* dp, int64_t n, int64_t s, float scale) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(Lanes<T>::load(p + i), Lanes<T>::load(dp + i), acc);
  float dot = sum8(acc);
  for (; i < n; ++i) dot += float(p[i]) * float(dp[i]);
  const __m256 dv = _mm256_set1_ps(dot), sv = _mm256_set1_ps(scale);
  for (i = 0; i + 8 <= n; i += 8)
    Lanes<T>::store(dp + i, _mm256_mul_ps(_mm256_mul_ps(Lanes<T>::load(p + i), _mm256_sub_ps(Lanes<T>::load(dp + i), dv)), sv));
  for (; i < n; ++i) dp[i] = T(float(p[i]) * (float(dp[i]) - dot) * scale);
  zero_tail(dp, n, s);
}

// Every row of scores: softmax in place, lse written (forward), or the probabilities from lse (`known`, backward).
template <class T>
void softmax_rows(at::Tensor& scores, const Rows& rows, float scale, float* lse, bool known) {
  T* base = scores.data_ptr<T>();
  const int64_t s = rows.width;
  parallel_range(0, rows.count, piece_rows(s), [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(known ? 0 : size_t(s));
    for (int64_t r = begin; r < end; ++r) {
      if (known) probability_row(base + r * s, rows.mask_row(r), rows.columns(r), s, scale, lse + 2 * r);
      else softmax_row(base + r * s, rows.mask_row(r), rows.columns(r), s, scale, scratch.data(), lse + 2 * r);
    }
  });
}

template <class T>
void softmax_grad_rows(const at::Tensor& p, at::Tensor& dp, const Rows& rows, float scale) {
  const T* pp = p.data_ptr<T>();
  T* dpp = dp.data_ptr<T>();
  const int64_t s = rows.width;
  parallel_range(0, rows.count, piece_rows(s), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) softmax_grad_row(pp + r * s, dpp + r * s, rows.columns(r), s, scale);
  });
}

// probs = softmax(qg k^T * scale + mask) for qg [B, Hkv, G T, D]; lse [B, Hkv, G T, 2] float32 (softmax_row),
// written (forward) or read (backward, `known`).
at::Tensor probabilities(const at::Tensor& qg, const at::Tensor& k, const Rows& rows, double scale, at::Tensor& lse,
                         bool known) {
  at::Tensor scores = at::matmul(qg, k.transpose(-1, -2)).contiguous();
  if (scores.scalar_type() == at::kBFloat16) softmax_rows<at::BFloat16>(scores, rows, float(scale), lse.data_ptr<float>(), known);
  else softmax_rows<float>(scores, rows, float(scale), lse.data_ptr<float>(), known);
  return scores;
}

struct LseAttention : public torch::autograd::Function<LseAttention> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, const at::Tensor& mask, double scale) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    const int64_t b = q.size(0), h = q.size(1), t = q.size(2), d = q.size(3), hkv = k.size(1);
    at::Tensor qg = q.reshape({b, hkv, (h / hkv) * t, d});
    at::Tensor lse = at::empty({b, hkv, qg.size(2), 2}, q.options().dtype(at::kFloat));
    const Rows rows(qg, k.size(2), t, mask);
    at::Tensor probs = probabilities(qg, k, rows, scale, lse, false);
    at::Tensor out = at::matmul(probs, v);
    ctx->save_for_backward({qg, k, v, mask, lse});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["t"] = t;
    return out.view({b, h, t, d});
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &qg = saved[0], &k = saved[1], &v = saved[2], &mask = saved[3];
    at::Tensor lse = saved[4];
    const double scale = ctx->saved_data["scale"].toDouble();
    const int64_t t = ctx->saved_data["t"].toInt();
    const at::Tensor& grad = grads[0];
    at::Tensor dout = grad.to(qg.scalar_type()).reshape(qg.sizes());
    const Rows rows(qg, k.size(2), t, mask);
    at::Tensor probs = probabilities(qg, k, rows, scale, lse, true);
    at::Tensor dv = ctx->needs_input_grad(2) ? at::matmul(probs.transpose(-1, -2), dout) : at::Tensor();
    at::Tensor dq, dk;
    if (ctx->needs_input_grad(0) || ctx->needs_input_grad(1)) {
      at::Tensor dp = at::matmul(dout, v.transpose(-1, -2)).contiguous();
      if (dp.scalar_type() == at::kBFloat16) softmax_grad_rows<at::BFloat16>(probs, dp, rows, float(scale));
      else softmax_grad_rows<float>(probs, dp, rows, float(scale));
      probs = at::Tensor();
      if (ctx->needs_input_grad(0)) dq = at::matmul(dp, k).view(grad.sizes());
      if (ctx->needs_input_grad(1)) dk = at::matmul(dp.transpose(-1, -2), qg);
    }
    return {dq, dk, dv, at::Tensor(), at::Tensor()};
  }
};
#endif

}  // namespace

at::Tensor lse_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                         double scale) {
#ifdef NODETUNE_X86_KERNELS
  if (!at::GradMode::is_enabled() || !(q.requires_grad() || k.requires_grad() || v.requires_grad())) return {};
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4 || !train_fusions_apply(q)) return {};
  const int64_t b = q.size(0), h = q.size(1), t = q.size(2), s = k.size(2);
  if (k.size(0) != b || v.size(0) != b || k.size(1) == 0 || h % k.size(1) != 0 || v.size(1) != k.size(1) ||
      v.size(2) != s || k.size(3) != q.size(3) || v.size(3) != q.size(3) || k.scalar_type() != q.scalar_type() ||
      v.scalar_type() != q.scalar_type() || k.device() != q.device() || v.device() != q.device() || t == 0 || s == 0)
    return {};
  at::Tensor m;
  if (mask.defined()) {
    if (mask.dim() != 4 || mask.size(1) != 1 || mask.size(2) != t || mask.size(3) != s ||
        (mask.size(0) != 1 && mask.size(0) != b))
      return {};
    m = mask.to(at::kFloat).contiguous().view({mask.size(0), t, s});
  }
  return LseAttention::apply(q, k, v, m, scale);
#else
  (void)q, (void)k, (void)v, (void)mask, (void)scale;
  return {};
#endif
}

}  // namespace nodetune::nn
