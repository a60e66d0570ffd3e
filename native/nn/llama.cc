// Llama family (llama, mistral, qwen2): RMSNorm, rotary embeddings, grouped-query attention, SwiGLU.
#include <cmath>
#include <tuple>

#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/model.h"

namespace nodetune::nn {

void register_llama(Model& m) {
  const auto& c = m.config();
  auto& p = m.params();
  const int64_t h = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  p.add(m.base("embed_tokens.weight"), {c.vocab_size, h}, Init::kNormal);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string l = m.base("layers." + std::to_string(i) + ".");
    // rows: the weight as a view of a shared block (q/k/v, gate/up: a frozen base multiplies them together without
    // a copy, see fused_linear).
    auto proj = [&](const std::string& name, int64_t out, int64_t in, bool bias, const at::Tensor& rows = {}) {
      if (rows.defined()) p.add_view(l + name + ".weight", rows, Init::kNormal);
      else p.add(l + name + ".weight", {out, in}, Init::kNormal);
      if (bias) p.add(l + name + ".bias", {out}, Init::kZeros);
    };
    at::Tensor qkv = p.block({q + 2 * kv, h}), gate_up = p.block({2 * c.intermediate_size, h});
    proj("self_attn.q_proj", q, h, c.qkv_bias, qkv.narrow(0, 0, q));
    proj("self_attn.k_proj", kv, h, c.qkv_bias, qkv.narrow(0, q, kv));
    proj("self_attn.v_proj", kv, h, c.qkv_bias, qkv.narrow(0, q + kv, kv));
    proj("self_attn.o_proj", h, q, c.o_bias);
    proj("mlp.gate_proj", c.intermediate_size, h, c.mlp_bias, gate_up.narrow(0, 0, c.intermediate_size));
    proj("mlp.up_proj", c.intermediate_size, h, c.mlp_bias, gate_up.narrow(0, c.intermediate_size, c.intermediate_size));
    proj("mlp.down_proj", h, c.intermediate_size, c.mlp_bias);
    p.add(l + "input_layernorm.weight", {h}, Init::kOnes);
    p.add(l + "post_attention_layernorm.weight", {h}, Init::kOnes);
  }
  p.add(m.base("norm.weight"), {h}, Init::kOnes);
}

at::Tensor llama_hidden(const Model& m, const Batch& b, KvCache* cache) {
  const auto& c = m.config();
  const auto& p = m.params();
  const int64_t batch = b.input_ids.size(0);
  const int64_t past = cache ? cache->past() : 0;
  const int64_t nh = c.num_heads, nkv = c.num_kv_heads, hd = c.head_dim;
  at::Tensor x = with_prefix(b.prefix, token_embedding(p.get(m.base("embed_tokens.weight")), b.input_ids));
  const int64_t t = x.size(1);
  at::Tensor positions = b.attention_mask.defined()
                             ? positions_from_mask(b.attention_mask, t)
                             : at::arange(past, past + t, b.input_ids.options()).unsqueeze(0).expand({batch, t});
  auto [cos, sin] = rope_cos_sin(c, positions, x.scalar_type());
  at::Tensor mask = additive_mask(b.attention_mask, batch, t, past, true, c.sliding_window, x.scalar_type(), x.device());
  const double scale = 1.0 / std::sqrt(double(hd));
  const bool ckpt = m.checkpointing(cache);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    // By value: with checkpointing the block runs again in backward, after this function returned.
    auto block = [&m, &c, &p, cache, mask, cos = cos, sin = sin, i, batch, t, nh, nkv, hd, scale](const at::Tensor& x) {
      const std::string l = m.base("layers." + std::to_string(i) + ".");
      at::Tensor a = rms_norm(p, l + "input_layernorm", x, c.norm_eps);
      auto qkv = fused_linear(p, {l + "self_attn.q_proj", l + "self_attn.k_proj", l + "self_attn.v_proj"}, a, c.qkv_bias);
      at::Tensor q = qkv[0].view({batch, t, nh, hd}).transpose(1, 2);
      at::Tensor k = qkv[1].view({batch, t, nkv, hd}).transpose(1, 2);
      at::Tensor v = qkv[2].view({batch, t, nkv, hd}).transpose(1, 2);
      q = apply_rope(q, cos, sin);
      k = apply_rope(k, cos, sin);
      if (cache) std::tie(k, v) = cache->append(size_t(i), k, v);
      at::Tensor o = attend(q, k, v, mask, scale, c.attn_dropout, m.training);
      o = linear(p, l + "self_attn.o_proj", o.transpose(1, 2).reshape({batch, t, nh * hd}), c.o_bias);
      at::Tensor h = x + sublayer(p, l + "attention", o);
      at::Tensor f = rms_norm(p, l + "post_attention_layernorm", h, c.norm_eps);
      auto gate_up = fused_linear(p, {l + "mlp.gate_proj", l + "mlp.up_proj"}, f, c.mlp_bias);
      at::Tensor down = c.act == "silu" ? swiglu_linear(p, l + "mlp.down_proj", gate_up[0], gate_up[1], c.mlp_bias)
                                         : linear(p, l + "mlp.down_proj", activation(c.act, gate_up[0]) * gate_up[1], c.mlp_bias);
      return h + sublayer(p, l + "mlp", down);
    };
    x = ckpt ? checkpointed(block, x) : block(x);
  }
  if (cache) cache->advance(t);
  return rms_norm(p, m.base("norm"), x, c.norm_eps);
}

}  // namespace nodetune::nn
