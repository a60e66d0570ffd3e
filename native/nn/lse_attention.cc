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
// Below this an additive mask entry masks (nn/layers.cc additive_mask: the dtype's lowest value).
constexpr float kMasked = -1e30f;

// Query positions [t0, t0 + tb) and the keys they attend over, [0, keys): no column after the last unmasked key of
// any of their rows has a probability above 0, so those columns are neither multiplied nor stored.
struct Block {
  int64_t t0, tb, keys;
};

// The mask [Bm, T, S] (float32, or undefined) read once: each mask row's columns up to its last unmasked key, and
// the query positions in blocks by the keys they need. Under a causal mask the first positions need few keys: at
// T = 1024 in blocks of 256 rows the products cover 62.5% of the [T, S] scores, not all of them. Consecutive blocks
// needing the same keys (no causal mask: all of them) are one block.
struct Plan {
  const float* mask = nullptr;
  int64_t mask_batches = 0, t = 0, s = 0;
  std::vector<int64_t> used;  // per mask row: its columns up to the last unmasked one (all where every one is masked)
  std::vector<Block> blocks;

  Plan(const at::Tensor& m, int64_t t, int64_t s) : t(t), s(s) {
    if (m.defined()) mask = m.data_ptr<float>(), mask_batches = m.size(0);
    for (int64_t r = 0; mask && r < mask_batches * t; ++r) {
      const float* row = mask + r * s;
      int64_t n = s;
      while (n > 0 && row[n - 1] < kMasked) --n;
      used.push_back(n > 0 ? n : s);  // every column masked: all of them, as the softmax of equal logits
    }
    // Blocks of at least 256 positions, at most 16. Measured at the 0.5B shape (bf16, 14 query heads on 2 key/value
    // heads, head size 64): at T = 1024 the attention took 1,533 ms a step in one block, 1,127 / 1,089 / 1,072 ms in
    // blocks of 64 / 128 / 256; at T = 256, 103 ms in one block and 130 / 110 in blocks of 64 / 128 (the blocks' row
    // copies and smaller products cost more than the skipped quarter saves).
    const int64_t tb = mask && t > 256 ? std::max<int64_t>(256, (t + 15) / 16) : t;
    for (int64_t t0 = 0; t0 < t; t0 += tb) {
      const int64_t n = std::min(tb, t - t0);
      int64_t keys = mask ? 0 : s;
      for (int64_t bm = 0; bm < mask_batches; ++bm)
        for (int64_t i = t0; i < t0 + n; ++i) keys = std::max(keys, used[size_t(bm * t + i)]);
      if (!blocks.empty() && blocks.back().keys == keys) blocks.back().tb += n;
      else blocks.push_back({t0, n, keys});
    }
  }
};

// The rows of one block's scores [B, Hkv, G tb, keys] with their additive mask rows: row r uses mask row
// (r / (Hkv G tb) if the mask has a batch, else 0, t0 + r % tb), and only its first `used` columns (those after
// are written as 0, not computed).
struct Rows {
  const Plan& plan;
  int64_t count, width, t0, tb, per_batch;

  Rows(const Plan& plan, const Block& b, const at::Tensor& qb)
      : plan(plan), count(qb.size(0) * qb.size(1) * qb.size(2)), width(b.keys), t0(b.t0), tb(b.tb),
        per_batch(qb.size(1) * qb.size(2)) {}
  int64_t mask_index(int64_t r) const { return (plan.mask_batches > 1 ? r / per_batch : 0) * plan.t + t0 + r % tb; }
  const float* mask_row(int64_t r) const { return plan.mask ? plan.mask + mask_index(r) * plan.s : nullptr; }
  int64_t columns(int64_t r) const { return plan.mask ? std::min(plan.used[size_t(mask_index(r))], width) : width; }
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

// probs = softmax(qb kb^T * scale + mask) for qb [B, Hkv, G tb, D] and kb [B, Hkv, keys, D]; lse [rows, 2] float32
// (softmax_row), written (forward) or read (backward, `known`).
at::Tensor probabilities(const at::Tensor& qb, const at::Tensor& kb, const Rows& rows, double scale, at::Tensor lse,
                         bool known) {
  at::Tensor scores = at::matmul(qb, kb.transpose(-1, -2)).contiguous();
  if (scores.scalar_type() == at::kBFloat16) softmax_rows<at::BFloat16>(scores, rows, float(scale), lse.data_ptr<float>(), known);
  else softmax_rows<float>(scores, rows, float(scale), lse.data_ptr<float>(), known);
  return scores;
}

// x [B, H, T, D]'s positions [t0, t0 + tb) as [B, Hkv, G tb, D] (each key/value head's query heads one after another).
at::Tensor block_rows(const at::Tensor& x, int64_t hkv, const Block& b) {
  const int64_t t = x.size(2);
  at::Tensor part = b.tb == t ? x : x.narrow(2, b.t0, b.tb);
  return part.reshape({x.size(0), hkv, (x.size(1) / hkv) * b.tb, x.size(3)});
}

// [B, Hkv, G tb, D] rows as positions [t0, t0 + tb) of out, whose shape is [B, H, T, D] (`sizes`): out itself where
// the block holds every position, else written into out.
void put_block(at::Tensor& out, const at::Tensor& rows, const Block& b, c10::IntArrayRef sizes) {
  const std::vector<int64_t> shape{sizes[0], sizes[1], b.tb, sizes[3]};
  if (b.tb == sizes[2]) out = rows.reshape(shape);
  else out.narrow(2, b.t0, b.tb).copy_(rows.view(shape));
}

struct LseAttention : public torch::autograd::Function<LseAttention> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, const at::Tensor& mask, double scale) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    const int64_t hkv = k.size(1);
    const Plan plan(mask, q.size(2), k.size(2));
    at::Tensor lse = at::empty({q.size(0) * q.size(1) * q.size(2), 2}, q.options().dtype(at::kFloat));
    at::Tensor out = plan.blocks.size() == 1 ? at::Tensor() : at::empty(q.sizes(), q.options());
    int64_t offset = 0;
    for (const Block& b : plan.blocks) {
      at::Tensor qb = block_rows(q, hkv, b), kb = k.narrow(2, 0, b.keys), vb = v.narrow(2, 0, b.keys);
      const Rows rows(plan, b, qb);
      at::Tensor probs = probabilities(qb, kb, rows, scale, lse.narrow(0, offset, rows.count), false);
      put_block(out, at::matmul(probs, vb), b, q.sizes());
      offset += rows.count;
    }
    ctx->save_for_backward({q, k, v, mask, lse});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &mask = saved[3], &lse = saved[4];
    const double scale = ctx->saved_data["scale"].toDouble();
    const int64_t hkv = k.size(1);
    const Plan plan(mask, q.size(2), k.size(2));
    // One block over every key: its products are the gradients of k and v themselves.
    const bool one = plan.blocks.size() == 1 && plan.blocks[0].keys == k.size(2);
    const bool need_q = ctx->needs_input_grad(0), need_k = ctx->needs_input_grad(1), need_v = ctx->needs_input_grad(2);
    at::Tensor dout = grads[0].to(q.scalar_type());
    // Blocks add their share of k's and v's gradients to the keys they cover; q's positions each get one block's.
    at::Tensor dq = need_q && plan.blocks.size() > 1 ? at::empty(q.sizes(), q.options()) : at::Tensor();
    at::Tensor dk = need_k && !one ? at::zeros(k.sizes(), k.options()) : at::Tensor();
    at::Tensor dv = need_v && !one ? at::zeros(v.sizes(), v.options()) : at::Tensor();
    int64_t offset = 0;
    for (const Block& b : plan.blocks) {
      at::Tensor qb = block_rows(q, hkv, b), kb = k.narrow(2, 0, b.keys), vb = v.narrow(2, 0, b.keys);
      at::Tensor db = block_rows(dout, hkv, b);
      const Rows rows(plan, b, qb);
      at::Tensor probs = probabilities(qb, kb, rows, scale, lse.narrow(0, offset, rows.count), true);
      offset += rows.count;
      if (need_v) {
        at::Tensor part = at::matmul(probs.transpose(-1, -2), db);
        one ? void(dv = part) : void(dv.narrow(2, 0, b.keys).add_(part));
      }
      if (!need_q && !need_k) continue;
      at::Tensor dp = at::matmul(db, vb.transpose(-1, -2)).contiguous();
      if (dp.scalar_type() == at::kBFloat16) softmax_grad_rows<at::BFloat16>(probs, dp, rows, float(scale));
      else softmax_grad_rows<float>(probs, dp, rows, float(scale));
      probs = at::Tensor();
      if (need_q) put_block(dq, at::matmul(dp, kb), b, q.sizes());
      if (need_k) {
        at::Tensor part = at::matmul(dp.transpose(-1, -2), qb);
        one ? void(dk = part) : void(dk.narrow(2, 0, b.keys).add_(part));
      }
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
