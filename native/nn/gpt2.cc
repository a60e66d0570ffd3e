// GPT-2: learned positions, pre-LN blocks, Conv1D weights stored [in, out], tied LM head.
#include <cmath>
#include <tuple>

#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/model.h"

namespace nodetune::nn {

void register_gpt2(Model& m) {
  const auto& c = m.config();
  auto& p = m.params();
  const int64_t h = c.hidden_size;
  p.add(m.base("wte.weight"), {c.vocab_size, h}, Init::kNormal);
  p.add(m.base("wpe.weight"), {c.max_positions, h}, Init::kNormal);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string l = m.base("h." + std::to_string(i) + ".");
    p.add(l + "ln_1.weight", {h}, Init::kOnes);
    p.add(l + "ln_1.bias", {h}, Init::kZeros);
    p.add(l + "attn.c_attn.weight", {h, 3 * h}, Init::kNormal);
    p.add(l + "attn.c_attn.bias", {3 * h}, Init::kZeros);
    p.add(l + "attn.c_proj.weight", {h, h}, Init::kNormal);
    p.add(l + "attn.c_proj.bias", {h}, Init::kZeros);
    p.add(l + "ln_2.weight", {h}, Init::kOnes);
    p.add(l + "ln_2.bias", {h}, Init::kZeros);
    p.add(l + "mlp.c_fc.weight", {h, c.intermediate_size}, Init::kNormal);
    p.add(l + "mlp.c_fc.bias", {c.intermediate_size}, Init::kZeros);
    p.add(l + "mlp.c_proj.weight", {c.intermediate_size, h}, Init::kNormal);
    p.add(l + "mlp.c_proj.bias", {h}, Init::kZeros);
  }
  p.add(m.base("ln_f.weight"), {h}, Init::kOnes);
  p.add(m.base("ln_f.bias"), {h}, Init::kZeros);
}

at::Tensor gpt2_hidden(const Model& m, const Batch& b, KvCache* cache) {
  const auto& c = m.config();
  const auto& p = m.params();
  const int64_t batch = b.input_ids.size(0);
  const int64_t past = cache ? cache->past() : 0;
  const int64_t nh = c.num_heads, hd = c.hidden_size / nh;
  at::Tensor x = with_prefix(b.prefix, token_embedding(p.get(m.base("wte.weight")), b.input_ids));
  const int64_t t = x.size(1);
  at::Tensor positions = b.attention_mask.defined()
                             ? positions_from_mask(b.attention_mask, t)
                             : at::arange(past, past + t, b.input_ids.options()).unsqueeze(0).expand({batch, t});
  x = x + at::embedding(p.get(m.base("wpe.weight")), positions);
  x = at::dropout(x, c.embd_dropout, m.training && c.embd_dropout > 0);
  at::Tensor mask = additive_mask(b.attention_mask, batch, t, past, true, 0, x.scalar_type(), x.device());
  const bool ckpt = m.checkpointing(cache);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    // By value: with checkpointing the block runs again in backward, after this function returned.
    auto block = [=, &m, &c, &p](const at::Tensor& input) {
      at::Tensor x = input;
      const std::string l = m.base("h." + std::to_string(i) + ".");
      at::Tensor a = layer_norm(p, l + "ln_1", x, c.norm_eps);
      auto qkv = conv1d(p, l + "attn.c_attn", a).view({batch, t, 3, nh, hd}).permute({2, 0, 3, 1, 4});
      at::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
      if (cache) std::tie(k, v) = cache->append(size_t(i), k, v);
      double scale = 1.0 / std::sqrt(double(hd));
      if (c.scale_attn_by_inverse_layer_idx) scale /= double(i + 1);
      at::Tensor o = attend(q, k, v, mask, scale, c.attn_dropout, m.training);
      o = o.transpose(1, 2).reshape({batch, t, c.hidden_size});
      o = sublayer(p, l + "attention", conv1d(p, l + "attn.c_proj", o));
      x = x + at::dropout(o, c.resid_dropout, m.training && c.resid_dropout > 0);
      at::Tensor f = layer_norm(p, l + "ln_2", x, c.norm_eps);
      f = sublayer(p, l + "mlp", conv1d(p, l + "mlp.c_proj", activation(c.act, conv1d(p, l + "mlp.c_fc", f))));
      x = x + at::dropout(f, c.resid_dropout, m.training && c.resid_dropout > 0);
      return x;
    };
    x = ckpt ? checkpointed(block, x) : block(x);
  }
  if (cache) cache->advance(t);
  return layer_norm(p, m.base("ln_f"), x, c.norm_eps);
}

}  // namespace nodetune::nn
