#include "train/fused_adamw.h"

#include <ATen/core/grad_mode.h>

#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "core/workers.h"
#include "nn/simd.h"

namespace nodetune::train {
namespace {

// The optimizer's state key for a parameter: LibTorch 1.x keys by the TensorImpl address printed as a
// string, 2.x by the address itself.
template <typename Key>
Key state_key(const at::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream out;
    out << p.unsafeGetTensorImpl();
    return out.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

bool fusable(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous() && !t.is_sparse();
}

struct Update {
  float* p;
  const float* g;
  float* m;
  float* v;
  int64_t n;
  float decay;      // 1 - lr * weight_decay
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float bias_correction2_sqrt, eps, neg_step_size;
};

// Elements [begin, end) one at a time.
void apply_scalar(const Update& u, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float g = u.g[i];
    float p = u.p[i] * u.decay;
    // Same operation order as AdamW::step(): mul_(beta1).add_(g, 1 - beta1), mul_(beta2).addcmul_(g, g, 1 - beta2),
    // (sqrt(v) / sqrt(bc2)).add_(eps), addcdiv_(m, denom, -step_size).
    const float m = u.m[i] * u.beta1 + u.one_minus_beta1 * g;
    const float v = u.v[i] * u.beta2 + u.one_minus_beta2 * g * g;
    const float denom = std::sqrt(v) / u.bias_correction2_sqrt + u.eps;
    u.m[i] = m;
    u.v[i] = v;
    u.p[i] = p + u.neg_step_size * (m / denom);
  }
}

#ifdef NODETUNE_X86_KERNELS
// Eight elements at a time, the scalar loop's operations in its order: AVX2 without FMA, so no multiply and add is
// fused into one rounding, and sqrt and division round correctly in both: the same floats as apply_scalar. The
// scalar loop is compiled for baseline x86-64 and, its square root and two divisions one element at a time, made a
// 0.5B full fine-tuning step's update compute-bound (about 0.9 s for 494M parameters).
__attribute__((target("avx2"))) void apply_avx2(const Update& u, int64_t begin, int64_t end) {
  const __m256 decay = _mm256_set1_ps(u.decay), beta1 = _mm256_set1_ps(u.beta1), beta2 = _mm256_set1_ps(u.beta2);
  const __m256 one_minus_beta1 = _mm256_set1_ps(u.one_minus_beta1), one_minus_beta2 = _mm256_set1_ps(u.one_minus_beta2);
  const __m256 bc2 = _mm256_set1_ps(u.bias_correction2_sqrt), eps = _mm256_set1_ps(u.eps);
  const __m256 neg_step = _mm256_set1_ps(u.neg_step_size);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 g = _mm256_loadu_ps(u.g + i);
    const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(u.p + i), decay);
    const __m256 m = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(u.m + i), beta1), _mm256_mul_ps(one_minus_beta1, g));
    const __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(u.v + i), beta2),
                                   _mm256_mul_ps(_mm256_mul_ps(one_minus_beta2, g), g));
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(v), bc2), eps);
    _mm256_storeu_ps(u.m + i, m);
    _mm256_storeu_ps(u.v + i, v);
    _mm256_storeu_ps(u.p + i, _mm256_add_ps(p, _mm256_mul_ps(neg_step, _mm256_div_ps(m, denom))));
  }
  apply_scalar(u, i, end);
}
#endif

void apply(const Update& u) {
  // nodetune's pool (core/workers.h): at::parallel_for, compiled here without -fopenmp, would run on this thread alone.
  parallel_range(0, u.n, 1 << 15, [&](int64_t begin, int64_t end) {
#ifdef NODETUNE_X86_KERNELS
    if (nn::has_avx2()) return apply_avx2(u, begin, end);
#endif
    apply_scalar(u, begin, end);
  });
}

}  // namespace

bool fused_adamw_step(torch::optim::AdamW& optimizer) {
  using State = torch::optim::AdamWParamState;
  using Key = typename std::decay_t<decltype(optimizer.state())>::key_type;
  auto& states = optimizer.state();
  for (auto& group : optimizer.param_groups()) {
    if (static_cast<const torch::optim::AdamWOptions&>(group.options()).amsgrad()) return false;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (!fusable(p) || !fusable(p.grad())) return false;
      auto it = states.find(state_key<Key>(p));
      if (it != states.end()) {
        const auto& s = static_cast<const State&>(*it->second);
        if (!fusable(s.exp_avg()) || !fusable(s.exp_avg_sq())) return false;
      }
    }
  }
  at::NoGradGuard no_grad;
  for (auto& group : optimizer.param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    const double lr = o.lr(), beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const Key key = state_key<Key>(p);
      auto it = states.find(key);
      if (it == states.end()) {
        auto fresh = std::make_unique<State>();
        fresh->step(0);
        fresh->exp_avg(at::zeros_like(p, at::MemoryFormat::Preserve));
        fresh->exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Preserve));
        it = states.emplace(key, std::move(fresh)).first;
      }
      auto& s = static_cast<State&>(*it->second);
      s.step(s.step() + 1);
      const double bias_correction1 = 1 - std::pow(beta1, double(s.step()));
      const double bias_correction2 = 1 - std::pow(beta2, double(s.step()));
      Update u;
      u.p = p.data_ptr<float>();
      u.g = p.grad().data_ptr<float>();
      u.m = s.exp_avg().data_ptr<float>();
      u.v = s.exp_avg_sq().data_ptr<float>();
      u.n = p.numel();
      u.decay = o.weight_decay() != 0 ? float(1 - lr * o.weight_decay()) : 1.0f;
      u.beta1 = float(beta1), u.one_minus_beta1 = float(1 - beta1);
      u.beta2 = float(beta2), u.one_minus_beta2 = float(1 - beta2);
      u.bias_correction2_sqrt = float(std::sqrt(bias_correction2));
      u.eps = float(o.eps());
      u.neg_step_size = float(-(lr / bias_correction1));
      apply(u);
    }
  }
  return true;
}

void clear_gradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params())
      if (p.grad().defined()) p.mutable_grad() = at::Tensor();
}

}  // namespace nodetune::train
