// T5 / mT5 / umT5 encoder-decoder: RMS layer norm without bias (float32 inside), relative position buckets (a bias
// table in block 0 of each stack, shared by all its blocks), unscaled attention, ReLU or gated FFN, and a tied
// head rescaled by d_model^-0.5. umT5: the same with a bias table in every block. Weight names are transformers' (shared.weight, encoder.block.N.layer.0.
// SelfAttention.q.weight, ...), so no base prefix.
#include <ATen/core/grad_mode.h>
#include <cmath>
#include <string>

#include "core/error.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/model.h"

namespace nodetune::nn {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

at::Tensor drop(const Model& m, const at::Tensor& x, double p) { return at::dropout(x, p, m.training && p > 0); }

std::string block(const std::string& stack, int64_t i) { return stack + ".block." + std::to_string(i) + "."; }

// transformers' T5Attention._relative_position_bucket for queries at positions [q_from, q_from + q_len) over keys
// [0, k_len): [q_len, k_len] int64 bucket ids.
at::Tensor relative_buckets(const ModelConfig& c, int64_t q_from, int64_t q_len, int64_t k_len, bool bidirectional,
                            c10::Device device) {
  auto opts = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor rel = at::arange(k_len, opts).view({1, k_len}) - at::arange(q_from, q_from + q_len, opts).view({q_len, 1});
  int64_t nb = c.relative_attention_num_buckets;
  at::Tensor buckets = at::zeros_like(rel);
  if (bidirectional) {
    nb /= 2;
    buckets = buckets + (rel > 0).to(at::kLong) * nb;
    rel = rel.abs();
  } else {
    rel = rel.clamp_max(0).neg();
  }
  const int64_t max_exact = nb / 2;
  at::Tensor is_small = rel < max_exact;
  at::Tensor large = at::log(rel.to(at::kFloat).clamp_min(1) / double(max_exact)) /
                     std::log(double(c.relative_attention_max_distance) / double(max_exact)) * double(nb - max_exact);
  large = (large.to(at::kLong) + max_exact).clamp_max(nb - 1);
  return buckets + at::where(is_small, rel, large);
}

// Position bias [1, H, q, k] of block i of a stack (T5: block 0's table; umt5: block i's) plus the additive mask
// (broadcast to [B, H, q, k]).
at::Tensor position_bias(const Model& m, const std::string& stack, int64_t i, const at::Tensor& buckets, const at::Tensor& mask) {
  const int64_t owner = m.config().per_layer_relative_bias ? i : 0;
  const at::Tensor& table = m.params().get(block(stack, owner) + "layer.0.SelfAttention.relative_attention_bias.weight");
  return at::embedding(table, buckets).permute({2, 0, 1}).unsqueeze(0) + mask;
}

// Multi-head attention of x over itself (memory undefined) or over `memory` (cross-attention), with an additive
// bias. With a cache: self-attention appends to (ck, cv); cross-attention computes them once and reuses them.
at::Tensor attention(const Model& m, const std::string& mod, const at::Tensor& x, const at::Tensor& memory,
                     const at::Tensor& bias, at::Tensor* ck, at::Tensor* cv) {
  const auto& c = m.config();
  const auto& p = m.params();
  const int64_t b = x.size(0), t = x.size(1), nh = c.num_heads, hd = c.head_dim;
  auto heads = [&](const at::Tensor& y) { return y.view({b, -1, nh, hd}).transpose(1, 2); };
  const bool cross = memory.defined();
  at::Tensor q = heads(linear(p, mod + ".q", x, false));
  at::Tensor k, v;
  if (cross && ck && ck->defined()) {
    k = *ck, v = *cv;
  } else {
    const at::Tensor& src = cross ? memory : x;
    k = heads(linear(p, mod + ".k", src, false));
    v = heads(linear(p, mod + ".v", src, false));
    if (ck) {
      if (!cross && ck->defined()) k = at::cat({*ck, k}, 2), v = at::cat({*cv, v}, 2);
      *ck = k, *cv = v;
    }
  }
  at::Tensor o = attend(q, k, v, bias, 1.0, c.attn_dropout, m.training);
  return linear(p, mod + ".o", o.transpose(1, 2).reshape({b, t, nh * hd}), false);
}

// DenseReluDense: act(wi x) or act(wi_0 x) * wi_1 x, dropout, wo.
at::Tensor feed_forward(const Model& m, const std::string& mod, const at::Tensor& x) {
  const auto& c = m.config();
  const auto& p = m.params();
  at::Tensor h = c.gated_ffn ? activation(c.act, linear(p, mod + ".wi_0", x, false)) * linear(p, mod + ".wi_1", x, false)
                             : activation(c.act, linear(p, mod + ".wi", x, false));
  return linear(p, mod + ".wo", drop(m, h, c.resid_dropout), false);
}

// Pre-norm residual sublayer: x + dropout(hook(f(norm(x)))).
template <typename F>
at::Tensor residual(const Model& m, const std::string& norm, const std::string& site, const at::Tensor& x, F f) {
  const auto& c = m.config();
  at::Tensor y = f(rms_norm(m.params(), norm, x, c.norm_eps));
  return x + drop(m, sublayer(m.params(), site, y), c.resid_dropout);
}

void add_stack(Model& m, const std::string& stack, int64_t layers, bool decoder) {
  const auto& c = m.config();
  auto& p = m.params();
  const int64_t d = c.hidden_size, inner = c.num_heads * c.head_dim, ff = c.intermediate_size;
  auto attn = [&](const std::string& mod) {
    p.add(mod + ".q.weight", {inner, d}, Init::kNormal);
    p.add(mod + ".k.weight", {inner, d}, Init::kNormal);
    p.add(mod + ".v.weight", {inner, d}, Init::kNormal);
    p.add(mod + ".o.weight", {d, inner}, Init::kNormal);
  };
  for (int64_t i = 0; i < layers; ++i) {
    const std::string l = block(stack, i);
    attn(l + "layer.0.SelfAttention");
    if (i == 0 || c.per_layer_relative_bias) p.add(l + "layer.0.SelfAttention.relative_attention_bias.weight", {c.relative_attention_num_buckets, c.num_heads}, Init::kNormal);
    p.add(l + "layer.0.layer_norm.weight", {d}, Init::kOnes);
    if (decoder) {
      attn(l + "layer.1.EncDecAttention");
      p.add(l + "layer.1.layer_norm.weight", {d}, Init::kOnes);
    }
    const std::string f = l + (decoder ? "layer.2." : "layer.1.");
    if (c.gated_ffn) {
      p.add(f + "DenseReluDense.wi_0.weight", {ff, d}, Init::kNormal);
      p.add(f + "DenseReluDense.wi_1.weight", {ff, d}, Init::kNormal);
    } else {
      p.add(f + "DenseReluDense.wi.weight", {ff, d}, Init::kNormal);
    }
    p.add(f + "DenseReluDense.wo.weight", {d, ff}, Init::kNormal);
    p.add(f + "layer_norm.weight", {d}, Init::kOnes);
  }
  p.add(stack + ".final_layer_norm.weight", {d}, Init::kOnes);
}

// One decoder block (self-attention, cross-attention, FFN) on x [B, T, H] with the encoder output `enc`.
at::Tensor decoder_block(const Model& m, int64_t i, const at::Tensor& x, const at::Tensor& enc, const at::Tensor& buckets,
                         const at::Tensor& self_mask, const at::Tensor& cross_mask, KvCache* cache) {
  const std::string l = block("decoder", i);
  at::Tensor bias = position_bias(m, "decoder", i, buckets, self_mask);
  at::Tensor* ck = cache ? &cache->k[i] : nullptr;
  at::Tensor* cv = cache ? &cache->v[i] : nullptr;
  at::Tensor h = residual(m, l + "layer.0.layer_norm", l + "attention", x, [&](const at::Tensor& a) {
    return attention(m, l + "layer.0.SelfAttention", a, at::Tensor(), bias, ck, cv);
  });
  at::Tensor* xk = cache ? &cache->cross_k[i] : nullptr;
  at::Tensor* xv = cache ? &cache->cross_v[i] : nullptr;
  h = residual(m, l + "layer.1.layer_norm", l + "cross_attention", h, [&](const at::Tensor& a) {
    return attention(m, l + "layer.1.EncDecAttention", a, enc, cross_mask, xk, xv);
  });
  return residual(m, l + "layer.2.layer_norm", l + "mlp", h,
                  [&](const at::Tensor& a) { return feed_forward(m, l + "layer.2.DenseReluDense", a); });
}

}  // namespace

void register_t5(Model& m) {
  const auto& c = m.config();
  m.params().add("shared.weight", {c.vocab_size, c.hidden_size}, Init::kNormal);
  add_stack(m, "encoder", c.num_layers, false);
  if (c.task != Task::kBase) add_stack(m, "decoder", c.num_decoder_layers, true);
}

// transformers' T5PreTrainedModel._init_weights: normals scaled by initializer_factor per matrix kind.
void t5_initialize(Model& m, const std::string& name) {
  const auto& c = m.config();
  const double f = c.init_factor, d = double(c.hidden_size);
  double std = f;  // shared, lm_head
  if (ends_with(name, ".relative_attention_bias.weight") || ends_with(name, ".k.weight") || ends_with(name, ".v.weight") ||
      ends_with(name, ".wi.weight") || ends_with(name, ".wi_0.weight") || ends_with(name, ".wi_1.weight"))
    std = f / std::sqrt(d);
  else if (ends_with(name, ".q.weight")) std = f / std::sqrt(d * double(c.head_dim));
  else if (ends_with(name, ".o.weight")) std = f / std::sqrt(double(c.num_heads * c.head_dim));
  else if (ends_with(name, ".wo.weight")) std = f / std::sqrt(double(c.intermediate_size));
  m.params().initialize(name, std);
  if (ends_with(name, "layer_norm.weight") && f != 1.0) {
    at::NoGradGuard no_grad;
    m.params().get(name).fill_(f);
  }
}

at::Tensor t5_encode(const Model& m, const Batch& b) {
  const auto& c = m.config();
  const auto& p = m.params();
  if (b.prefix.defined()) fail("ERR_STATE", "prompt tuning is not supported for T5 models");
  at::Tensor x = drop(m, token_embedding(p.get("shared.weight"), b.input_ids), c.embd_dropout);
  const int64_t batch = x.size(0), t = x.size(1);
  at::Tensor buckets = relative_buckets(c, 0, t, t, true, x.device());
  at::Tensor mask = additive_mask(b.attention_mask, batch, t, 0, false, 0, x.scalar_type(), x.device());
  const bool ckpt = m.checkpointing(nullptr);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    // By value: with checkpointing the block runs again in backward.
    auto layer = [&m, buckets, mask, i](const at::Tensor& x) {
      const std::string l = block("encoder", i);
      at::Tensor bias = position_bias(m, "encoder", i, buckets, mask);
      at::Tensor h = residual(m, l + "layer.0.layer_norm", l + "attention", x, [&](const at::Tensor& a) {
        return attention(m, l + "layer.0.SelfAttention", a, at::Tensor(), bias, nullptr, nullptr);
      });
      return residual(m, l + "layer.1.layer_norm", l + "mlp", h,
                      [&](const at::Tensor& a) { return feed_forward(m, l + "layer.1.DenseReluDense", a); });
    };
    x = ckpt ? checkpointed(layer, x) : layer(x);
  }
  return drop(m, rms_norm(p, "encoder.final_layer_norm", x, c.norm_eps), c.embd_dropout);
}

at::Tensor t5_decode(const Model& m, const Batch& b, const at::Tensor& enc, KvCache* cache) {
  const auto& c = m.config();
  const auto& p = m.params();
  const at::Tensor& ids = b.decoder_input_ids;
  const int64_t past = cache ? cache->past() : 0;
  at::Tensor x = drop(m, token_embedding(p.get("shared.weight"), ids), c.embd_dropout);
  const int64_t batch = x.size(0), t = x.size(1), s = enc.size(1);
  if (b.decoder_attention_mask.defined() && b.decoder_attention_mask.size(1) != past + t)
    fail("ERR_SHAPE", "decoderAttentionMask must cover the cached and the new decoder tokens");
  at::Tensor buckets = relative_buckets(c, past, t, past + t, false, x.device());
  at::Tensor self_mask = additive_mask(b.decoder_attention_mask, batch, t, past, true, 0, x.scalar_type(), x.device());
  at::Tensor cross_mask = additive_mask(b.attention_mask, batch, 1, s - 1, false, 0, x.scalar_type(), x.device());  // [B, 1, 1, S]
  const int64_t n = c.num_decoder_layers;
  if (cache) cache->k.resize(n), cache->v.resize(n), cache->cross_k.resize(n), cache->cross_v.resize(n);
  const bool ckpt = m.checkpointing(cache);
  for (int64_t i = 0; i < n; ++i) {
    if (!ckpt) {
      x = decoder_block(m, i, x, enc, buckets, self_mask, cross_mask, cache);
      continue;
    }
    // The encoder output travels with the block's input (and its gradient with the block's output), so the
    // recomputation in backward never re-enters the encoder's graph.
    auto layer = [&m, i, t, s, buckets, self_mask, cross_mask](const at::Tensor& xe) {
      at::Tensor e = xe.narrow(1, t, s);
      return at::cat({decoder_block(m, i, xe.narrow(1, 0, t), e, buckets, self_mask, cross_mask, nullptr), e}, 1);
    };
    x = checkpointed(layer, at::cat({x, enc}, 1)).narrow(1, 0, t);
  }
  if (cache) cache->advance(t);  // self-attention keys/values: exact-size tensors, concatenated per step
  return drop(m, rms_norm(p, "decoder.final_layer_norm", x, c.norm_eps), c.embd_dropout);
}

at::Tensor t5_lm_logits(const Model& m, const at::Tensor& h) {
  const auto& c = m.config();
  if (!c.tie_word_embeddings) return linear(m.params(), "lm_head", h, false);
  return at::linear(h * std::pow(double(c.hidden_size), -0.5), m.params().get("shared.weight"));
}

at::Tensor t5_shift_right(const ModelConfig& c, const at::Tensor& labels) {
  if (labels.dim() != 2) fail("ERR_SHAPE", "seq2seq-lm labels must be [batch, target length]");
  at::Tensor out = at::full_like(labels, c.decoder_start_token_id);
  if (labels.size(1) > 1) out.narrow(1, 1, labels.size(1) - 1).copy_(labels.narrow(1, 0, labels.size(1) - 1));
  return out.masked_fill(out == -100, c.pad_token_id >= 0 ? c.pad_token_id : 0);
}

}  // namespace nodetune::nn
