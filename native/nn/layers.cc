#include "nn/layers.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <ATen/core/grad_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/version.h>

#include "core/error.h"
#include "nn/decode_linear.h"
#include "nn/decode_ops.h"
#include "nn/lse_attention.h"
#include "nn/quantized_linear.h"
#include "nn/rms_norm.h"
#include "nn/rope_backward.h"
#include "nn/swiglu.h"
#include "nn/train_fusions.h"

namespace nodetune::nn {

namespace {

// The layer's own output, without its adapters.
at::Tensor own_linear(const Params& p, const std::string& name, const at::Tensor& x, bool bias) {
  if (auto q = p.quantized_ptr(name + ".weight")) {
    at::Tensor y = quantized_linear(q, x);
    return bias ? y + p.get(name + ".bias") : y;
  }
  const at::Tensor& w = p.get(name + ".weight");
  at::Tensor b = bias ? p.get(name + ".bias") : at::Tensor();
  return decode_linear_applies(x, w) ? decode_linear(x, w, b) : bias ? at::linear(x, w, b) : at::linear(x, w);
}

// x W^T added in place into `into` ([rows, out]): Hooks::OwnOutput's second form.
at::Tensor own_linear_into(const Params& p, const std::string& name, const at::Tensor& x, bool bias,
                           const at::Tensor& into) {
  if (bias || p.quantized(name + ".weight")) return {};
  const at::Tensor& w = p.get(name + ".weight");
  if (w.scalar_type() != x.scalar_type() || into.scalar_type() != x.scalar_type() || into.device() != x.device())
    return {};
  return into.addmm_(x.reshape({-1, x.size(-1)}), w.t());
}

}  // namespace

at::Tensor linear(const Params& p, const std::string& name, const at::Tensor& x, bool bias) {
  at::Tensor y = own_linear(p, name, x, bias);
  return p.hooks() ? p.hooks()->linear(name, x, y) : y;
}

at::Tensor swiglu_linear(const Params& p, const std::string& name, const at::Tensor& gate, const at::Tensor& up,
                         bool bias) {
  if (p.hooks()) {
    at::Tensor y = p.hooks()->swiglu_linear(name, gate, up, [&](const at::Tensor& f) { return own_linear(p, name, f, bias); });
    if (y.defined()) return y;
  }
  return linear(p, name, swiglu(gate, up), bias);
}

std::vector<at::Tensor> fused_linear(const Params& p, const std::vector<std::string>& names, const at::Tensor& x,
                                     bool bias) {
  // Concatenating the weights copies them: worth it only when the product is large against that copy, so
  // decoding keeps separate products unless the weights can be read together without a copy (below).
  const bool quantized = p.quantized(names[0] + ".weight") != nullptr;  // its own product per layer
  const int64_t rows = x.numel() / x.size(-1);
  const bool decoding = rows < 64;
  std::vector<at::Tensor> weights, biases;
  std::vector<int64_t> sizes;
  for (const auto& name : names) {
    weights.push_back(p.get(name + ".weight"));
    if (bias) biases.push_back(p.get(name + ".bias"));
    sizes.push_back(weights.back().size(0));
  }
  // Decoding steps (<= 4 rows): one product over all the layers' rows, no weight copy: the rows of the frozen
  // block (bf16, nn/llama.cc) or the layers' quantized weights one after another into one output; one input cast,
  // one output, one bias add instead of one each per layer.
  at::Tensor y;
  if (decoding && decode_ops_apply(x, rows)) {
    if (quantized) {
      std::vector<std::shared_ptr<const QuantizedWeight>> ws;
      for (const auto& name : names)
        if (auto q = p.quantized_ptr(name + ".weight")) ws.push_back(q);
      if (ws.size() == names.size()) {
        y = quantized_linear_rows(ws, x);
        for (size_t i = 0; i < ws.size(); ++i) sizes[i] = ws[i]->rows;  // its output features (a Conv1D's are cols)
      }
      if (y.defined() && bias) y = y + at::cat(biases, 0);
    } else {
      at::Tensor block = p.rows_view(weights);
      if (block.defined() && decode_linear_applies(x, block))
        y = decode_linear(x, block, bias ? at::cat(biases, 0) : at::Tensor());
    }
  }
  if (!y.defined() && (quantized || decoding)) {
    std::vector<at::Tensor> parts;
    for (const auto& name : names) parts.push_back(linear(p, name, x, bias));
    return parts;
  }
  // Every layer adapted and at least as wide as its input (gate and up): one product each. An adapted layer's output
  // is a new tensor (its own plus the adapter's), so one product's output would be split and, in backward, its
  // gradient concatenated from the parts' (5 MB a layer for gate/up at the 0.5B shape, 256 tokens, bf16); products
  // this wide run as fast apart.
  const Hooks* hooks = p.hooks();
  bool apart = !y.defined() && hooks;
  for (size_t i = 0; apart && i < names.size(); ++i) apart = hooks->adapts(names[i]) && sizes[i] >= x.size(-1);
  std::vector<at::Tensor> parts;
  if (apart) {
    // The adapter may make its part first and have each product added into it (peft/adapters.cc lora_b_then_own).
    std::vector<at::Tensor> adapted = hooks->linear_group(names, x, {}, [&](size_t i, const at::Tensor& into) {
      return into.defined() ? own_linear_into(p, names[i], x, bias, into) : own_linear(p, names[i], x, bias);
    });
    if (!adapted.empty()) return adapted;
    for (const auto& name : names) parts.push_back(own_linear(p, name, x, bias));
  } else {
    if (!y.defined()) {
      at::Tensor w = p.rows_view(weights);  // a frozen base registered with add_rows: no copy
      if (!w.defined()) w = at::cat(weights, 0);
      y = bias ? at::linear(x, w, at::cat(biases, 0)) : at::linear(x, w);
    }
    parts = y.split_with_sizes(sizes, -1);
  }
  if (!hooks) return parts;
  if (!apart) {
    std::vector<at::Tensor> adapted = hooks->linear_group(names, x, parts, nullptr);
    if (!adapted.empty()) return adapted;
  }
  for (size_t i = 0; i < parts.size(); ++i) parts[i] = hooks->linear(names[i], x, parts[i]);
  return parts;
}

at::Tensor conv1d(const Params& p, const std::string& name, const at::Tensor& x) {
  if (auto q = p.quantized_ptr(name + ".weight")) {
    at::Tensor y = quantized_linear(q, x) + p.get(name + ".bias");
    return p.hooks() ? p.hooks()->linear(name, x, y) : y;
  }
  const at::Tensor& w = p.get(name + ".weight");
  auto sizes = x.sizes().vec();
  sizes.back() = w.size(1);
  at::Tensor y = at::addmm(p.get(name + ".bias"), x.reshape({-1, x.size(-1)}), w).view(sizes);
  return p.hooks() ? p.hooks()->linear(name, x, y) : y;
}

at::Tensor sublayer(const Params& p, const std::string& site, const at::Tensor& h) {
  return p.hooks() ? p.hooks()->sublayer(site, h) : h;
}

at::Tensor with_prefix(const at::Tensor& prefix, const at::Tensor& x) {
  if (!prefix.defined()) return x;
  at::Tensor pre = prefix.to(x.scalar_type()).unsqueeze(0).expand({x.size(0), prefix.size(0), prefix.size(1)});
  return at::cat({pre, x}, 1);
}

namespace {
// The lookup whose gradient is sparse: one row per distinct id (sorted), each the sum of its positions' gradients
// from zero in the order they appear, the sums LibTorch's dense embedding backward makes, so a dense gradient plus
// this one has the values of the dense path (LibTorch's own sparse gradient keeps a row per position, and adding
// those one by one rounds differently where an id repeats).
struct SparseLookup : public torch::autograd::Function<SparseLookup> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& table, const at::Tensor& ids) {
    ctx->save_for_backward({ids});
    ctx->saved_data["rows"] = table.size(0);
    return at::embedding(table, ids);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor ids = ctx->get_saved_variables()[0].reshape(-1);
    const int64_t rows = ctx->saved_data["rows"].toInt();
    at::Tensor g = grads[0].reshape({ids.numel(), grads[0].size(-1)});
    auto [distinct, inverse] = at::_unique(ids, /*sorted=*/true, /*return_inverse=*/true);
    at::Tensor sums = at::zeros({distinct.numel(), g.size(1)}, g.options()).index_add_(0, inverse, g);
    at::Tensor sparse = at::_sparse_coo_tensor_unsafe(distinct.unsqueeze(0), sums, {rows, g.size(1)});
    return {sparse._coalesced_(true), at::Tensor()};
  }
};
}  // namespace

at::Tensor token_embedding(const at::Tensor& table, const at::Tensor& ids) {
  if (at::GradMode::is_enabled() && table.requires_grad() && table.dim() == 2) return SparseLookup::apply(table, ids);
  return at::embedding(table, ids);
}

void densify_gradients(const std::vector<at::Tensor>& params) {
  for (const auto& t : params) {
    if (t.grad().defined() && t.grad().is_sparse()) {
      at::Tensor param = t;
      param.mutable_grad() = t.grad().to_dense();
    }
  }
}

at::Tensor layer_norm(const Params& p, const std::string& name, const at::Tensor& x, double eps) {
  return at::layer_norm(x, {x.size(-1)}, p.get(name + ".weight"), p.get(name + ".bias"), eps);
}

at::Tensor rms_norm(const Params& p, const std::string& name, const at::Tensor& x, double eps) {
  const at::Tensor& w = p.get(name + ".weight");
  if (x.dim() >= 1 && w.scalar_type() == x.scalar_type() && w.dim() == 1 && w.size(0) == x.size(-1) &&
      decode_ops_apply(x, x.numel() / std::max<int64_t>(x.size(-1), 1)) &&
      !(at::GradMode::is_enabled() && w.requires_grad()))
    return decode_rms_norm(x, w, eps);
  if (rms_norm_fused_applies(x, w)) return rms_norm_fused(x, w, eps);
  at::Tensor h = x.to(at::kFloat);
  h = h * at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return w * h.to(x.scalar_type());
}

at::Tensor activation(const std::string& act, const at::Tensor& x) {
  if (act == "gelu") return at::gelu(x);
  if (act == "gelu_tanh") return at::gelu(x, "tanh");
  if (act == "relu") return at::relu(x);
  if (act == "silu") return at::silu(x);
  if (act == "quick_gelu") return x * at::sigmoid(1.702 * x);
  fail("ERR_CONFIG", "unsupported activation: " + act);
}

namespace {
// Softmax over the scores' last dimension in float32 arithmetic, as q's dtype. bfloat16 scores on the fused CPU
// path go through LibTorch's bfloat16 softmax (float32 inside, one rounding: the same probabilities) so backward
// keeps them in bfloat16 instead of a float32 copy (8.4 MB a layer at the 1B shape).
at::Tensor attention_probs(const at::Tensor& scores, c10::ScalarType dtype) {
  if (scores.scalar_type() == at::kBFloat16 && dtype == at::kBFloat16 && train_fusions_apply(scores)) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    return at::_softmax(scores, -1, false);
  }
  return at::softmax(scores, -1, at::kFloat).to(dtype);
}
}  // namespace

at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                  double scale, double dropout, bool training) {
  at::Tensor kk = k, vv = v;
  const int64_t groups = q.size(1) / k.size(1);
  // Training: the probabilities are recomputed in backward rather than kept (nn/lse_attention.h). With LibTorch 2.x
  // too, in place of its CPU flash attention: with Debian 13's LibTorch 2.6 on 2 threads (AMX Xeon) the 0.5B LoRA
  // bf16 step takes 984 ms with it against 1,498 through scaled_dot_product_attention (-499 +- 22 ms, 8 pairs
  // alternated in one process): SDPA's backward, since its forward is the faster one. Without gradients (prompts,
  // evaluation, decoding) SDPA stays: a 256-token forward 253 against 280 ms, 16 decoded tokens 1,120 against 1,156.
  if (!(training && dropout > 0)) {
    at::Tensor out = lse_attention(q, k, v, mask, scale);
    if (out.defined()) return out;
  }
#if TORCH_VERSION_MAJOR < 2
  // Grouped-query attention: the query heads that share a key/value head attend as one [groups x T] block over it,
  // so keys and values are not copied `groups` times (and, in training, their gradients not summed back from the
  // copies): every decoding step (the cache), and training and prompts while the fused training ops are on.
  if (groups > 1 && (decode_ops_apply(q, q.size(0) * q.size(2)) || train_fusions_apply(q)) &&
      (!mask.defined() || (mask.dim() == 4 && mask.size(1) == 1))) {
    const int64_t b = q.size(0), hkv = k.size(1), t = q.size(2), d = q.size(3);
    at::Tensor scores = at::matmul(q.reshape({b, hkv, groups * t, d}) * scale, k.transpose(-1, -2));
    // The mask's rows once per query head of a group ([B, 1, G x T, S]), added to the scores themselves: an
    // in-place add through a 5-D view of them would cost a copy of their gradient in backward (CopySlices).
    if (mask.defined()) scores.add_(mask.repeat({1, 1, groups, 1}));
    at::Tensor probs = attention_probs(scores, q.scalar_type());
    if (training && dropout > 0) probs = at::dropout(probs, dropout, true);
    return at::matmul(probs, v).view({b, q.size(1), t, d});
  }
#endif
  if (groups > 1) {
    kk = k.repeat_interleave(groups, 1);
    vv = v.repeat_interleave(groups, 1);
  }
#if TORCH_VERSION_MAJOR >= 2
  // LibTorch 2.x: the fused kernels (flash / memory-efficient on CUDA, flash on CPU from 2.1). The 2.0 signature
  // has no scale argument and divides by sqrt(D) itself, so q is rescaled to get `scale`. Not in training on the CPU
  // (where nodetune's attention above did not apply: its fused ops off, dropout, no AVX2, or a gradient checkpoint's
  // first pass, which must match its recomputation): in Debian 13's LibTorch 2.6, SDPA's CPU backward gives wrong
  // gradients once a batch holds a fully masked query row (a left-padded one: no key to attend to): a tiny Llama's
  // gradient norm 6.72 where 1.13's ops and nodetune's attention give 2.25, although such rows carry no label and
  // reach no other row (test 68, padded batches).
  if (!(training && q.device().is_cpu())) {
    const double p = training ? dropout : 0.0;
    // In q's dtype (autocast may have made it bfloat16), where float32's lowest would round to -inf and a fully
    // masked (padding) row would turn into NaN: nan_to_num puts the dtype's lowest finite value back.
    c10::optional<at::Tensor> m;
    if (mask.defined()) m = mask.to(q.scalar_type()).nan_to_num();
#if TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 1
    return at::scaled_dot_product_attention(q, kk, vv, m, p, /*is_causal=*/false, scale);
#else
    return at::scaled_dot_product_attention(q * (scale * std::sqrt(double(q.size(-1)))), kk, vv, m, p, false);
#endif
  }
#endif
  // The scale goes on q ([.., T, D]) rather than on the scores ([.., T, S]), and the mask is added in place:
  // two fewer passes over the scores in forward and backward.
  at::Tensor scores = at::matmul(q * scale, kk.transpose(-1, -2));
  if (mask.defined()) scores.add_(mask);
  at::Tensor probs = attention_probs(scores, q.scalar_type());
  if (training && dropout > 0) probs = at::dropout(probs, dropout, true);
  return at::matmul(probs, vv);
}

at::Tensor additive_mask(const at::Tensor& attention_mask, int64_t batch, int64_t t, int64_t past, bool causal,
                         int64_t sliding_window, c10::ScalarType dtype, c10::Device device) {
  const int64_t s = past + t;
  auto bool_opts = at::TensorOptions().dtype(at::kBool).device(device);
  at::Tensor allowed = at::ones({batch, 1, t, s}, bool_opts);
  if (causal) {
    at::Tensor qi = at::arange(past, s, at::TensorOptions().dtype(at::kLong).device(device)).view({t, 1});
    at::Tensor kj = at::arange(0, s, at::TensorOptions().dtype(at::kLong).device(device)).view({1, s});
    at::Tensor vis = kj <= qi;
    if (sliding_window > 0) vis = vis & (qi - kj < sliding_window);
    allowed = allowed & vis.view({1, 1, t, s});
  }
  if (attention_mask.defined()) allowed = allowed & attention_mask.to(device).to(at::kBool).view({batch, 1, 1, s});
  const double lowest = (dtype == at::kHalf) ? -65504.0 : (dtype == at::kBFloat16 ? -3.38e38 : std::numeric_limits<float>::lowest());
  at::Tensor out = at::zeros({batch, 1, t, s}, at::TensorOptions().dtype(dtype).device(device));
  return out.masked_fill(allowed.logical_not(), lowest);
}

at::Tensor positions_from_mask(const at::Tensor& attention_mask, int64_t t) {
  at::Tensor m = attention_mask.to(at::kLong);
  at::Tensor pos = m.cumsum(-1) - 1;
  pos = pos.masked_fill(m == 0, 1);
  return pos.narrow(1, pos.size(1) - t, t);
}

std::pair<at::Tensor, at::Tensor> rope_cos_sin(const ModelConfig& c, const at::Tensor& positions,
                                               c10::ScalarType dtype) {
  const int64_t d = c.head_dim;
  auto fopts = at::TensorOptions().dtype(at::kFloat).device(positions.device());
  at::Tensor inv = 1.0 / at::pow(c.rope_theta, at::arange(0, d, 2, fopts.dtype(at::kLong)).to(at::kFloat) / double(d));
  if (c.rope_type == "linear") {
    inv = inv / c.rope_factor;
  } else if (c.rope_type == "llama3") {
    const double low_wavelen = double(c.rope_original_max_positions) / c.rope_low_freq_factor;
    const double high_wavelen = double(c.rope_original_max_positions) / c.rope_high_freq_factor;
    at::Tensor wavelen = 2.0 * M_PI / inv;
    at::Tensor scaled = at::where(wavelen > low_wavelen, inv / c.rope_factor, inv);
    at::Tensor smooth = (double(c.rope_original_max_positions) / wavelen - c.rope_low_freq_factor) /
                        (c.rope_high_freq_factor - c.rope_low_freq_factor);
    at::Tensor smoothed = (1 - smooth) * scaled / c.rope_factor + smooth * scaled;
    at::Tensor medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen);
    inv = at::where(medium, smoothed, scaled);
  }
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv.view({1, 1, -1});  // [B, T, D/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1).unsqueeze(1);                          // [B, 1, T, D]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  if (x.dim() == 4 && x.size(-1) % 2 == 0 && cos.dim() == 4 && cos.size(1) == 1 && cos.scalar_type() == x.scalar_type() &&
      sin.sizes() == cos.sizes() && sin.scalar_type() == x.scalar_type() && decode_ops_apply(x, x.size(0) * x.size(2)))
    return decode_rope(x, cos, sin);
  if (at::GradMode::is_enabled() && x.requires_grad() && !cos.requires_grad() && !sin.requires_grad() &&
      train_fusions_apply(x))
    return rope_with_backward(x, cos, sin);
  return x * cos + rotate_half(x) * sin;
}

}  // namespace nodetune::nn
