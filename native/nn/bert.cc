// Post-LN encoders: BERT and RoBERTa (same weight names under bert. / roberta.), and DistilBERT.
#include <cmath>

#include "core/error.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/model.h"

namespace nodetune::nn {
namespace {

void add_linear(Params& p, const std::string& name, int64_t out, int64_t in) {
  p.add(name + ".weight", {out, in}, Init::kNormal);
  p.add(name + ".bias", {out}, Init::kZeros);
}

void add_norm(Params& p, const std::string& name, int64_t h) {
  p.add(name + ".weight", {h}, Init::kOnes);
  p.add(name + ".bias", {h}, Init::kZeros);
}

at::Tensor drop(const Model& m, const at::Tensor& x, double p) { return at::dropout(x, p, m.training && p > 0); }

// Multi-head self-attention over x [B, T, H] with projections named `q`, `k`, `v`.
at::Tensor self_attention(const Model& m, const at::Tensor& x, const at::Tensor& mask, const std::string& q,
                          const std::string& k, const std::string& v) {
  const auto& c = m.config();
  const auto& p = m.params();
  const int64_t batch = x.size(0), t = x.size(1), nh = c.num_heads, hd = c.hidden_size / nh;
  auto heads = [&](const std::string& name) {
    return linear(p, name, x, true).view({batch, t, nh, hd}).transpose(1, 2);
  };
  at::Tensor o = attend(heads(q), heads(k), heads(v), mask, 1.0 / std::sqrt(double(hd)), c.attn_dropout, m.training);
  return o.transpose(1, 2).reshape({batch, t, c.hidden_size});
}

}  // namespace

void register_bert(Model& m) {
  const auto& c = m.config();
  auto& p = m.params();
  const int64_t h = c.hidden_size;
  p.add(m.base("embeddings.word_embeddings.weight"), {c.vocab_size, h}, Init::kNormal);
  p.add(m.base("embeddings.position_embeddings.weight"), {c.max_positions, h}, Init::kNormal);
  if (c.type_vocab_size > 0)
    p.add(m.base("embeddings.token_type_embeddings.weight"), {c.type_vocab_size, h}, Init::kNormal);
  add_norm(p, m.base("embeddings.LayerNorm"), h);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string l = m.base("encoder.layer." + std::to_string(i) + ".");
    add_linear(p, l + "attention.self.query", h, h);
    add_linear(p, l + "attention.self.key", h, h);
    add_linear(p, l + "attention.self.value", h, h);
    add_linear(p, l + "attention.output.dense", h, h);
    add_norm(p, l + "attention.output.LayerNorm", h);
    add_linear(p, l + "intermediate.dense", c.intermediate_size, h);
    add_linear(p, l + "output.dense", h, c.intermediate_size);
    add_norm(p, l + "output.LayerNorm", h);
  }
}

at::Tensor bert_hidden(const Model& m, const Batch& b) {
  const auto& c = m.config();
  const auto& p = m.params();
  const int64_t batch = b.input_ids.size(0), t = b.input_ids.size(1) + (b.prefix.defined() ? b.prefix.size(0) : 0);
  at::Tensor positions;
  if (c.roberta_positions) {
    if (b.prefix.defined()) fail("ERR_STATE", "prompt tuning is not supported for RoBERTa positions");
    at::Tensor real = (b.input_ids != c.pad_token_id).to(at::kLong);
    positions = real.cumsum(1) * real + c.pad_token_id;
  } else {
    positions = at::arange(0, t, b.input_ids.options()).unsqueeze(0).expand({batch, t});
  }
  at::Tensor x = with_prefix(b.prefix, token_embedding(p.get(m.base("embeddings.word_embeddings.weight")), b.input_ids)) +
                 at::embedding(p.get(m.base("embeddings.position_embeddings.weight")), positions);
  if (c.type_vocab_size > 0) {
    at::Tensor types = b.token_type_ids.defined() ? b.token_type_ids : at::zeros({batch, t}, b.input_ids.options());
    x = x + at::embedding(p.get(m.base("embeddings.token_type_embeddings.weight")), types);
  }
  x = drop(m, layer_norm(p, m.base("embeddings.LayerNorm"), x, c.norm_eps), c.resid_dropout);
  at::Tensor mask = additive_mask(b.attention_mask, batch, t, 0, false, 0, x.scalar_type(), x.device());
  const bool ckpt = m.checkpointing(nullptr);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    // By value: with checkpointing the block runs again in backward, after this function returned.
    auto block = [=, &m, &c, &p](const at::Tensor& input) {
      at::Tensor x = input;
      const std::string l = m.base("encoder.layer." + std::to_string(i) + ".");
      at::Tensor a = self_attention(m, x, mask, l + "attention.self.query", l + "attention.self.key",
                                    l + "attention.self.value");
      a = sublayer(p, l + "attention", drop(m, linear(p, l + "attention.output.dense", a, true), c.resid_dropout));
      x = layer_norm(p, l + "attention.output.LayerNorm", a + x, c.norm_eps);
      at::Tensor f = activation(c.act, linear(p, l + "intermediate.dense", x, true));
      f = sublayer(p, l + "mlp", drop(m, linear(p, l + "output.dense", f, true), c.resid_dropout));
      x = layer_norm(p, l + "output.LayerNorm", f + x, c.norm_eps);
      return x;
    };
    x = ckpt ? checkpointed(block, x) : block(x);
  }
  return x;
}

void register_distilbert(Model& m) {
  const auto& c = m.config();
  auto& p = m.params();
  const int64_t h = c.hidden_size;
  p.add(m.base("embeddings.word_embeddings.weight"), {c.vocab_size, h}, Init::kNormal);
  p.add(m.base("embeddings.position_embeddings.weight"), {c.max_positions, h}, Init::kNormal);
  add_norm(p, m.base("embeddings.LayerNorm"), h);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string l = m.base("transformer.layer." + std::to_string(i) + ".");
    add_linear(p, l + "attention.q_lin", h, h);
    add_linear(p, l + "attention.k_lin", h, h);
    add_linear(p, l + "attention.v_lin", h, h);
    add_linear(p, l + "attention.out_lin", h, h);
    add_norm(p, l + "sa_layer_norm", h);
    add_linear(p, l + "ffn.lin1", c.intermediate_size, h);
    add_linear(p, l + "ffn.lin2", h, c.intermediate_size);
    add_norm(p, l + "output_layer_norm", h);
  }
}

at::Tensor distilbert_hidden(const Model& m, const Batch& b) {
  const auto& c = m.config();
  const auto& p = m.params();
  const int64_t batch = b.input_ids.size(0), t = b.input_ids.size(1) + (b.prefix.defined() ? b.prefix.size(0) : 0);
  at::Tensor positions = at::arange(0, t, b.input_ids.options()).unsqueeze(0).expand({batch, t});
  at::Tensor x = with_prefix(b.prefix, token_embedding(p.get(m.base("embeddings.word_embeddings.weight")), b.input_ids)) +
                 at::embedding(p.get(m.base("embeddings.position_embeddings.weight")), positions);
  x = drop(m, layer_norm(p, m.base("embeddings.LayerNorm"), x, c.norm_eps), c.resid_dropout);
  at::Tensor mask = additive_mask(b.attention_mask, batch, t, 0, false, 0, x.scalar_type(), x.device());
  const bool ckpt = m.checkpointing(nullptr);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    // By value: with checkpointing the block runs again in backward, after this function returned.
    auto block = [=, &m, &c, &p](const at::Tensor& input) {
      at::Tensor x = input;
      const std::string l = m.base("transformer.layer." + std::to_string(i) + ".");
      at::Tensor a = self_attention(m, x, mask, l + "attention.q_lin", l + "attention.k_lin", l + "attention.v_lin");
      a = sublayer(p, l + "attention", linear(p, l + "attention.out_lin", a, true));
      x = layer_norm(p, l + "sa_layer_norm", a + x, c.norm_eps);
      at::Tensor f = linear(p, l + "ffn.lin2", activation(c.act, linear(p, l + "ffn.lin1", x, true)), true);
      x = layer_norm(p, l + "output_layer_norm", sublayer(p, l + "mlp", drop(m, f, c.resid_dropout)) + x, c.norm_eps);
      return x;
    };
    x = ckpt ? checkpointed(block, x) : block(x);
  }
  return x;
}

}  // namespace nodetune::nn
