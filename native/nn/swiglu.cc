#include "nn/swiglu.h"

#include <c10/core/impl/LocalDispatchKeySet.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>

#include "core/workers.h"
#include "nn/fused_rows.h"
#include "nn/train_fusions.h"

namespace nodetune::nn {
namespace {

#ifdef NODETUNE_X86_KERNELS
// y = g * sigmoid(g) * u over rows [begin, end) of f elements; gs, us: the row strides of g and u (y is dense).
template <class T>
__attribute__((target("avx2,fma"))) void swiglu_rows(const T* g, int64_t gs, const T* u, int64_t us, T* y, int64_t f,
                                                      int64_t begin, int64_t end) {
  const __m256 one = _mm256_set1_ps(1.f), zero = _mm256_setzero_ps();
  for (int64_t r = begin; r < end; ++r) {
    const T* gr = g + r * gs;
    const T* ur = u + r * us;
    T* yr = y + r * f;
    int64_t i = 0;
    for (; i + 8 <= f; i += 8) {
      const __m256 gv = Lanes<T>::load(gr + i);
      const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, gv))));
      Lanes<T>::store(yr + i, _mm256_mul_ps(_mm256_mul_ps(gv, s), Lanes<T>::load(ur + i)));
    }
    for (; i < f; ++i) {
      const float gv = float(gr[i]);
      yr[i] = T(gv / (1.f + std::exp(-gv)) * float(ur[i]));
    }
  }
}

// With s = sigmoid(g): dg = dy * u * s * (1 + g * (1 - s)), du = dy * g * s, over rows [begin, end); dg or du null
// when not wanted; os: their row stride. y (dense, or null): swiglu(g, u) itself, from the same sigmoid.
template <class T>
__attribute__((target("avx2,fma"))) void swiglu_grad_rows(const T* dy, int64_t ds, const T* g, int64_t gs, const T* u,
                                                           int64_t us, T* dg, T* du, int64_t os, T* y, int64_t f,
                                                           int64_t begin, int64_t end) {
  const __m256 one = _mm256_set1_ps(1.f), zero = _mm256_setzero_ps();
  for (int64_t r = begin; r < end; ++r) {
    const T* dr = dy + r * ds;
    const T* gr = g + r * gs;
    const T* ur = u + r * us;
    T* dgr = dg ? dg + r * os : nullptr;
    T* dur = du ? du + r * os : nullptr;
    T* yr = y ? y + r * f : nullptr;
    int64_t i = 0;
    for (; i + 8 <= f; i += 8) {
      const __m256 gv = Lanes<T>::load(gr + i), dv = Lanes<T>::load(dr + i);
      const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, gv))));
      if (dgr) {
        const __m256 ds_ = _mm256_mul_ps(s, _mm256_fmadd_ps(gv, _mm256_sub_ps(one, s), one));  // d silu / d g
        Lanes<T>::store(dgr + i, _mm256_mul_ps(_mm256_mul_ps(dv, Lanes<T>::load(ur + i)), ds_));
      }
      if (dur) Lanes<T>::store(dur + i, _mm256_mul_ps(dv, _mm256_mul_ps(gv, s)));
      if (yr) Lanes<T>::store(yr + i, _mm256_mul_ps(_mm256_mul_ps(gv, s), Lanes<T>::load(ur + i)));
    }
    for (; i < f; ++i) {
      const float gv = float(gr[i]), dv = float(dr[i]), s = 1.f / (1.f + std::exp(-gv));
      if (dgr) dgr[i] = T(dv * float(ur[i]) * (s * (1.f + gv * (1.f - s))));
      if (dur) dur[i] = T(dv * (gv * s));
      if (yr) yr[i] = T(gv / (1.f + std::exp(-gv)) * float(ur[i]));  // as swiglu_rows computes it
    }
  }
}

// g, u: [rows, f] with unit stride along f; y dense.
template <class T>
void forward_rows(const at::Tensor& g, const at::Tensor& u, at::Tensor& y) {
  const int64_t rows = g.size(0), f = g.size(1), gs = g.stride(0), us = u.stride(0);
  const T *gp = g.data_ptr<T>(), *up = u.data_ptr<T>();
  T* yp = y.data_ptr<T>();
  parallel_range(0, rows, piece_rows(f), [&](int64_t b, int64_t e) { swiglu_rows(gp, gs, up, us, yp, f, b, e); });
}

// d, g, u: [rows, f] with unit stride along f; dg, du (either undefined when not wanted): the same, one row stride;
// y (or undefined): dense [rows, f] for swiglu(g, u).
template <class T>
void backward_rows(const at::Tensor& d, const at::Tensor& g, const at::Tensor& u, const at::Tensor& dg,
                   const at::Tensor& du, const at::Tensor& y) {
  const int64_t rows = g.size(0), f = g.size(1), ds = d.stride(0), gs = g.stride(0), us = u.stride(0);
  const int64_t os = dg.defined() ? dg.stride(0) : du.defined() ? du.stride(0) : f;
  const T *dp = d.data_ptr<T>(), *gp = g.data_ptr<T>(), *up = u.data_ptr<T>();
  T* dgp = dg.defined() ? dg.data_ptr<T>() : nullptr;
  T* dup = du.defined() ? du.data_ptr<T>() : nullptr;
  T* yp = y.defined() ? y.data_ptr<T>() : nullptr;
  parallel_range(0, rows, piece_rows(f), [&](int64_t b, int64_t e) {
    swiglu_grad_rows(dp, ds, gp, gs, up, us, dgp, dup, os, yp, f, b, e);
  });
}

at::Tensor swiglu_rows_of(const at::Tensor& g, const at::Tensor& u, c10::IntArrayRef sizes) {
  at::Tensor y = at::empty(g.sizes(), g.options().memory_format(at::MemoryFormat::Contiguous));
  if (g.scalar_type() == at::kFloat) forward_rows<float>(g, u, y);
  else forward_rows<at::BFloat16>(g, u, y);
  return y.view(sizes);
}

void swiglu_grads_of(const at::Tensor& d, const at::Tensor& g, const at::Tensor& u, const at::Tensor& dg,
                     const at::Tensor& du, const at::Tensor& y = at::Tensor()) {
  if (g.scalar_type() == at::kFloat) backward_rows<float>(d, g, u, dg, du, y);
  else backward_rows<at::BFloat16>(d, g, u, dg, du, y);
}

// The gradients of gate and up (as their shapes; undefined where not wanted) for d, the gradient of swiglu(gate, up)
// as rows; g and u: gate and up as rows. With `y`, swiglu(g, u) as dense rows too (the same pass, one sigmoid).
torch::autograd::variable_list gate_up_grads(const at::Tensor& d, const at::Tensor& gate, const at::Tensor& up,
                                             const at::Tensor& g, const at::Tensor& u, bool need_g, bool need_u,
                                             at::Tensor* y = nullptr) {
  const auto opts = gate.options().memory_format(at::MemoryFormat::Contiguous);
  at::Tensor dg = need_g ? at::empty(g.sizes(), opts) : at::Tensor();
  at::Tensor du = need_u ? at::empty(g.sizes(), opts) : at::Tensor();
  if (y) *y = at::empty(g.sizes(), opts);
  if (need_g || need_u || y) swiglu_grads_of(d, g, u, dg, du, y ? *y : at::Tensor());
  return {need_g ? dg.view(gate.sizes()) : at::Tensor(), need_u ? du.view(up.sizes()) : at::Tensor()};
}

// gate and up as two tensors (any strides).
struct SwiGlu : public torch::autograd::Function<SwiGlu> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    ctx->save_for_backward({gate, up});
    return swiglu_rows_of(as_rows(gate), as_rows(up), gate.sizes());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &gate = saved[0], &up = saved[1];
    const bool need_g = ctx->needs_input_grad(0), need_u = ctx->needs_input_grad(1);
    at::Tensor g = as_rows(gate), u = as_rows(up), d = as_rows(grads[0].to(gate.scalar_type()));
    return gate_up_grads(d, gate, up, g, u, need_g, need_u);
  }
};

// gate and up as the two halves of each row of one contiguous tensor `both` (nn/layers.cc fused_linear splits the
// one gate_up product so): the op takes `both`, and its gradient reaches the product as one tensor, written half by
// half, instead of two that split's backward would concatenate (a copy of [tokens, 2 x intermediate] per layer).
struct SwiGluHalves : public torch::autograd::Function<SwiGluHalves> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& both, int64_t f,
                            c10::IntArrayRef sizes) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    ctx->save_for_backward({both});
    ctx->saved_data["f"] = f;
    at::Tensor rows = both.view({-1, 2 * f});
    return swiglu_rows_of(rows.narrow(1, 0, f), rows.narrow(1, f, f), sizes);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor both = ctx->get_saved_variables()[0];
    const int64_t f = ctx->saved_data["f"].toInt();
    at::Tensor rows = both.view({-1, 2 * f}), d = as_rows(grads[0].to(both.scalar_type()));
    at::Tensor grad = at::empty(rows.sizes(), both.options().memory_format(at::MemoryFormat::Contiguous));
    swiglu_grads_of(d, rows.narrow(1, 0, f), rows.narrow(1, f, f), grad.narrow(1, 0, f), grad.narrow(1, f, f));
    return {grad.view(both.sizes()), at::Tensor(), at::Tensor()};
  }
};

// swiglu(gate, up) = f and f @ w^T in one node that keeps gate, up and w, not f: backward recomputes f (one pass
// over [rows, f]) for w's gradient, and the two incoming gradients meet in one addmm before SwiGLU's backward.
struct SwiGluProduct : public torch::autograd::Function<SwiGluProduct> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& gate,
                                                const at::Tensor& up, const at::Tensor& w) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    ctx->save_for_backward({gate, up, w});
    at::Tensor f = swiglu_rows_of(as_rows(gate), as_rows(up), gate.sizes());
    return {f, at::matmul(f, w.t())};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &gate = saved[0], &up = saved[1], &w = saved[2];
    const auto dtype = gate.scalar_type();
    at::Tensor g = as_rows(gate), u = as_rows(up);
    at::Tensor dlow = grads[1].defined() ? grads[1].reshape({-1, w.size(0)}).to(dtype) : at::Tensor();
    // d loss / d f: the gradient from f's own consumers plus dlow's through w.
    at::Tensor df = grads[0].defined() ? as_rows(grads[0].to(dtype)) : at::Tensor();
    if (dlow.defined()) df = df.defined() ? at::addmm(df, dlow, w) : at::mm(dlow, w);
    // f again for w's gradient, from the sigmoid pass that gives gate's and up's (w's gradient needs dlow, so df is
    // defined whenever it is wanted).
    const bool need_w = ctx->needs_input_grad(2) && dlow.defined();
    at::Tensor f;
    auto out = df.defined() ? gate_up_grads(df, gate, up, g, u, ctx->needs_input_grad(0), ctx->needs_input_grad(1), need_w ? &f : nullptr)
                            : torch::autograd::variable_list{at::Tensor(), at::Tensor()};
    out.push_back(need_w ? at::mm(dlow.t(), f.view({-1, g.size(1)})) : at::Tensor());
    return out;
  }
};

// The tensor whose rows are [gate row | up row] when gate and up are views of its two halves, else undefined.
at::Tensor halves_of(const at::Tensor& gate, const at::Tensor& up, const at::Tensor& g, const at::Tensor& u) {
  if (!gate.is_view() || !up.is_view()) return at::Tensor();
  const at::TensorBase& base = gate._base();
  const int64_t rows = g.size(0), f = g.size(1);
  if (!base.is_same(up._base()) || !base.is_contiguous() || base.numel() != 2 * rows * f) return at::Tensor();
  const char* p = static_cast<const char*>(base.data_ptr());
  if (g.data_ptr() != p || u.data_ptr() != p + f * base.element_size()) return at::Tensor();
  if (rows > 1 && (g.stride(0) != 2 * f || u.stride(0) != 2 * f)) return at::Tensor();
  return at::Tensor(base);
}

// Where the fused kernels take gate and up: one shape and dtype on one device, under train_fusions_apply.
bool fusable(const at::Tensor& gate, const at::Tensor& up) {
  return gate.dim() >= 1 && gate.numel() > 0 && gate.sizes() == up.sizes() && gate.scalar_type() == up.scalar_type() &&
         up.device() == gate.device() && train_fusions_apply(gate);
}
#endif

}  // namespace

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) {
#ifdef NODETUNE_X86_KERNELS
  if (fusable(gate, up)) {
    at::Tensor g = as_rows(gate), u = as_rows(up);
    at::Tensor both = halves_of(gate, up, g, u);
    return both.defined() ? SwiGluHalves::apply(both, g.size(1), gate.sizes()) : SwiGlu::apply(gate, up);
  }
#endif
  return at::silu(gate) * up;
}

std::pair<at::Tensor, at::Tensor> swiglu_with_product(const at::Tensor& gate, const at::Tensor& up,
                                                      const at::Tensor& w) {
#ifdef NODETUNE_X86_KERNELS
  if (at::GradMode::is_enabled() && w.requires_grad() && (gate.requires_grad() || up.requires_grad()) &&
      w.scalar_type() == gate.scalar_type() && w.dim() == 2 && w.size(1) == gate.size(-1) && w.device() == gate.device() &&
      fusable(gate, up)) {
    auto out = SwiGluProduct::apply(gate, up, w);
    return {out[0], out[1]};
  }
#endif
  return {};
}

}  // namespace nodetune::nn
