#include "nn/model.h"

#include <ATen/core/grad_mode.h>
#include <ATen/autocast_mode.h>

#include <cmath>
#include <string>

#include "core/autocast_state.h"
#include "core/error.h"
#include "nn/decode_linear.h"
#include "nn/layers.h"
#include "nn/linear_cross_entropy.h"
#include "nn/quantized_linear.h"

namespace nodetune::nn {
namespace {

// Masked-LM head weight names (transformers' BertForMaskedLM / RobertaForMaskedLM / DistilBertForMaskedLM). The
// decoder is tied to the word embeddings; only its bias is a parameter.
struct MlmNames {
  std::string dense, norm, bias;
};

MlmNames mlm_names(const ModelConfig& c) {
  if (c.family == Family::kDistilBert) return {"vocab_transform", "vocab_layer_norm", "vocab_projector.bias"};
  if (c.model_type == "roberta") return {"lm_head.dense", "lm_head.layer_norm", "lm_head.bias"};
  return {"cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias"};
}

// dense -> activation (BERT/DistilBERT: the config's; RoBERTa: exact GELU) -> LayerNorm -> tied decoder + bias.
at::Tensor mlm_logits(const Model& m, const at::Tensor& h) {
  const auto& c = m.config();
  const MlmNames n = mlm_names(c);
  at::Tensor x = linear(m.params(), n.dense, h, true);
  x = layer_norm(m.params(), n.norm, activation(c.model_type == "roberta" ? "gelu" : c.act, x), c.norm_eps);
  return at::linear(x, m.params().get(m.base("embeddings.word_embeddings.weight")), m.params().get(n.bias));
}

}  // namespace

Model::Model(const ModelConfig& config, c10::ScalarType dtype, c10::Device device)
    : cfg_(config), params_(dtype, device) {
  switch (cfg_.family) {
    case Family::kGpt2: register_gpt2(*this); break;
    case Family::kLlama: register_llama(*this); break;
    case Family::kBert: register_bert(*this); break;
    case Family::kDistilBert: register_distilbert(*this); break;
    case Family::kT5: register_t5(*this); break;
  }
  add_head();
}

void Model::set_dropout(double embedding, double attention, double hidden, double classifier) {
  for (double p : {embedding, attention, hidden, classifier})
    if (p >= 1.0) fail("ERR_ARGUMENT", "dropout probabilities must be below 1, got " + std::to_string(p));
  if (embedding >= 0) cfg_.embd_dropout = embedding;
  if (attention >= 0) cfg_.attn_dropout = attention;
  if (hidden >= 0) cfg_.resid_dropout = hidden;
  if (classifier >= 0) cfg_.classifier_dropout = classifier;
}

void Model::initialize(const std::string& name) {
  if (cfg_.family == Family::kT5) return t5_initialize(*this, name);
  double std = cfg_.init_range;
  // GPT-2 scales the residual projections by 1/sqrt(2 * n_layer) (transformers' GPT2PreTrainedModel._init_weights).
  const std::string suffix = "c_proj.weight";
  if (cfg_.family == Family::kGpt2 && name.size() >= suffix.size() &&
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
    std /= std::sqrt(2.0 * double(cfg_.num_layers));
  params_.initialize(name, std);
  // Embeddings built with padding_idx = pad_token_id get that row zeroed (Llama's embed_tokens, BERT/DistilBERT's
  // word embeddings, RoBERTa's word and position embeddings); GPT-2's wte has no padding_idx.
  const bool encoder = cfg_.family == Family::kBert || cfg_.family == Family::kDistilBert;
  const bool padded = (cfg_.family == Family::kLlama && name == base("embed_tokens.weight")) ||
                      (encoder && name == base("embeddings.word_embeddings.weight")) ||
                      (cfg_.roberta_positions && name == base("embeddings.position_embeddings.weight"));
  const int64_t pad = cfg_.pad_token_id;
  if (padded && pad >= 0 && pad < params_.get(name).size(0)) {
    at::NoGradGuard no_grad;
    params_.get(name)[pad].zero_();
  }
}

void Model::add_head() {
  const int64_t h = cfg_.hidden_size, labels = cfg_.num_labels;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, Init init) {
    params_.add(name, std::move(shape), init);
    head_names_.push_back(name);
  };
  auto add_linear = [&](const std::string& name, int64_t out, int64_t in, bool bias) {
    add(name + ".weight", {out, in}, Init::kNormal);
    if (bias) add(name + ".bias", {out}, Init::kZeros);
  };
  if (cfg_.family == Family::kT5 && cfg_.task != Task::kBase && cfg_.task != Task::kSeq2SeqLm)
    fail("ERR_CONFIG", "model_type " + cfg_.model_type + " supports the tasks seq2seq-lm and base only");
  const bool decoder = is_decoder(cfg_);
  const bool bert_like = cfg_.family == Family::kBert;
  const bool roberta = cfg_.model_type == "roberta";
  switch (cfg_.task) {
    case Task::kBase:
      if (bert_like) add_linear(base("pooler.dense"), h, h, true);
      break;
    case Task::kSeq2SeqLm:
      if (cfg_.family != Family::kT5) fail("ERR_CONFIG", "task seq2seq-lm needs an encoder-decoder model; model_type is " + cfg_.model_type);
      if (!cfg_.tie_word_embeddings) add_linear("lm_head", cfg_.vocab_size, h, false);
      break;
    case Task::kCausalLm:
      if (!decoder) fail("ERR_CONFIG", "task causal-lm needs a decoder model; model_type is " + cfg_.model_type);
      if (!cfg_.tie_word_embeddings) add_linear("lm_head", cfg_.vocab_size, h, false);
      break;
    case Task::kSequenceClassification:
      if (decoder) add_linear("score", labels, h, false);
      else if (cfg_.family == Family::kDistilBert) add_linear("pre_classifier", h, h, true), add_linear("classifier", labels, h, true);
      else if (roberta) add_linear("classifier.dense", h, h, true), add_linear("classifier.out_proj", labels, h, true);
      else add_linear(base("pooler.dense"), h, h, true), add_linear("classifier", labels, h, true);
      break;
    case Task::kTokenClassification:
      add_linear(cfg_.family == Family::kLlama ? "score" : "classifier", labels, h, true);
      break;
    case Task::kQuestionAnswering:
      if (decoder) fail("ERR_CONFIG", "task question-answering is for encoder models; model_type is " + cfg_.model_type);
      add_linear("qa_outputs", 2, h, true);
      break;
    case Task::kMaskedLm: {
      if (decoder) fail("ERR_CONFIG", "task masked-lm is for encoder models; model_type is " + cfg_.model_type);
      const MlmNames n = mlm_names(cfg_);
      add_linear(n.dense, h, h, true);
      add(n.norm + ".weight", {h}, Init::kOnes);
      add(n.norm + ".bias", {h}, Init::kZeros);
      add(n.bias, {cfg_.vocab_size}, Init::kZeros);
      break;
    }
  }
}

// With prompt tuning active, the virtual tokens go before the tokens at the first call (the KV cache keeps
// them afterwards), the attention mask and token types grow by n, and the hidden states of the virtual
// tokens are dropped, so outputs line up with the real tokens.
at::Tensor Model::hidden(const Batch& batch, KvCache* cache) const { return hidden_prompted(batch, cache, true); }

at::Tensor Model::hidden_prompted(const Batch& batch, KvCache* cache, bool strip) const {
  at::Tensor prompt = params_.hooks() ? params_.hooks()->prompt() : at::Tensor();
  if (!prompt.defined()) return hidden_of(batch, cache);
  const int64_t n = prompt.size(0), b = batch.input_ids.size(0), t = batch.input_ids.size(1);
  const bool first = !cache || cache->past() == 0;
  auto opts = batch.input_ids.options();
  Batch ext = batch;
  at::Tensor mask = batch.attention_mask.defined() ? batch.attention_mask.to(at::kLong)
                                                   : at::ones({b, (cache ? cache->past() : 0) + t}, opts);
  ext.attention_mask = at::cat({at::ones({b, n}, mask.options()), mask}, 1);
  if (first) {
    ext.prefix = prompt;
    if (batch.token_type_ids.defined()) ext.token_type_ids = at::cat({at::zeros({b, n}, opts), batch.token_type_ids}, 1);
  }
  at::Tensor h = hidden_of(ext, cache);
  return first && strip ? h.narrow(1, n, t) : h;
}

at::Tensor Model::forward_loss(const Batch& batch, const at::Tensor& labels) const {
  if (cfg_.task == Task::kSeq2SeqLm && !batch.decoder_input_ids.defined()) {
    Batch b = batch;  // decoder inputs from the labels, as transformers' _shift_right
    b.decoder_input_ids = t5_shift_right(cfg_, labels.to(at::kLong));
    return loss(forward(b, nullptr), labels);
  }
  if (cfg_.task != Task::kCausalLm) return loss(forward(batch, nullptr), labels);
  if (labels.dim() != 2) fail("ERR_SHAPE", "causal-lm labels must have the shape of inputIds");
  at::Tensor prompt = params_.hooks() ? params_.hooks()->prompt() : at::Tensor();
  if (!prompt.defined()) return causal_lm_loss(hidden(batch, nullptr), labels);
  at::Tensor pad = at::full({labels.size(0), prompt.size(0)}, -100, labels.options());
  return causal_lm_loss(hidden_prompted(batch, nullptr, false), at::cat({pad, labels}, 1));
}

int64_t Model::loss_terms(const at::Tensor& labels) const {
  auto counted = [](const at::Tensor& y) { return (y != -100).sum().item<int64_t>(); };
  switch (cfg_.task) {
    case Task::kCausalLm: {
      if (labels.dim() != 2) fail("ERR_SHAPE", "causal-lm labels must have the shape of inputIds");
      const bool prompted = params_.hooks() && params_.hooks()->prompt().defined();
      return counted(prompted ? labels : labels.narrow(1, 1, labels.size(1) - 1));
    }
    case Task::kSequenceClassification:
      return cfg_.num_labels == 1 ? labels.numel() : counted(labels);
    case Task::kTokenClassification:
    case Task::kMaskedLm:
    case Task::kSeq2SeqLm: return counted(labels);
    case Task::kQuestionAnswering: return labels.size(0);  // the start and end losses: means over the rows
    case Task::kBase: break;
  }
  fail("ERR_STATE", "the base model has no loss; load it with a task");
}

// The LM head runs on the first T-1 positions only (the last one predicts nothing): the logits come out
// contiguous, so cross-entropy needs no copy of a [B, T-1, V] slice, and the head does 1/T less work.
at::Tensor Model::causal_lm_loss(const at::Tensor& h, const at::Tensor& labels) const {
  const int64_t t = h.size(1);
  if (labels.size(1) != t) fail("ERR_SHAPE", "causal-lm labels must have the shape of inputIds");
  at::Tensor shifted = labels.narrow(1, 1, t - 1).reshape({-1});
  // Gradients without an adapter on the head: the fused head + loss (nn/linear_cross_entropy.h), its products in
  // float32, or in bfloat16 under CPU autocast or for a bfloat16 model (chunked all the same: at a 152k vocabulary
  // the [N, V] logits, their float32 copy, log-probabilities and gradient are never all kept).
  const at::Tensor& w = lm_head_weight();
  const bool adapted = !cfg_.tie_word_embeddings && params_.hooks() && params_.hooks()->adapts("lm_head");
  const bool cpu_autocast = autocast_enabled(c10::kCPU) && h.device().is_cpu();
  c10::ScalarType compute = c10::ScalarType::Undefined;
  if (cpu_autocast && autocast_dtype(c10::kCPU) == at::kBFloat16) compute = at::kBFloat16;
  else if (!cpu_autocast && !autocast_enabled(c10::kCUDA) && h.scalar_type() == w.scalar_type() &&
           (h.scalar_type() == at::kFloat || h.scalar_type() == at::kBFloat16))
    compute = h.scalar_type();
  const bool quantized = params_.quantized("lm_head.weight") != nullptr;
  if (at::GradMode::is_enabled() && !adapted && !quantized && compute != c10::ScalarType::Undefined) {
    at::Tensor rows = h.narrow(1, 0, t - 1).reshape({-1, h.size(-1)});
    return linear_cross_entropy(rows, w, shifted, compute);
  }
  at::Tensor logits = lm_logits(h.narrow(1, 0, t - 1));
  return at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}).to(at::kFloat), shifted, {}, at::Reduction::Mean, -100);
}

at::Tensor Model::hidden_of(const Batch& batch, KvCache* cache) const {
  switch (cfg_.family) {
    case Family::kGpt2: return gpt2_hidden(*this, batch, cache);
    case Family::kLlama: return llama_hidden(*this, batch, cache);
    case Family::kBert: return bert_hidden(*this, batch);
    case Family::kDistilBert: return distilbert_hidden(*this, batch);
    case Family::kT5: return t5_encode(*this, batch);
  }
  fail("ERR_CONFIG", "unknown model family");
}

const at::Tensor& Model::lm_head_weight() const {
  if (!cfg_.tie_word_embeddings) return params_.get("lm_head.weight");
  return params_.get(base(cfg_.family == Family::kGpt2 ? "wte.weight" : "embed_tokens.weight"));
}

at::Tensor Model::lm_logits(const at::Tensor& h) const {
  // A quantized head (the option quantizeLmHead; for tied embeddings a quantized copy of them) reads fewer bytes.
  at::Tensor y;
  if (auto q = params_.quantized_ptr("lm_head.weight")) {
    y = quantized_linear(q, h);
  } else {
    const at::Tensor& w = lm_head_weight();
    y = decode_linear_applies(h, w) ? decode_linear(h, w, at::Tensor()) : at::linear(h, w);
  }
  // Adapters apply to an untied lm_head only (the tied head is the embedding matrix, not a linear layer).
  return !cfg_.tie_word_embeddings && params_.hooks() ? params_.hooks()->linear("lm_head", h, y) : y;
}

at::Tensor Model::forward(const Batch& batch, KvCache* cache) const {
  if (cfg_.family != Family::kT5) return apply_head(hidden(batch, cache), batch);
  if (params_.hooks() && params_.hooks()->prompt().defined()) fail("ERR_STATE", "prompt tuning is not supported for T5 models");
  const bool cached = cache && cache->encoder_out.defined();
  at::Tensor enc = cached ? cache->encoder_out : t5_encode(*this, batch);
  if (cfg_.task == Task::kBase) return enc;
  if (cache) cache->encoder_out = enc;
  if (!batch.decoder_input_ids.defined()) fail("ERR_ARGUMENT", "seq2seq-lm forward() needs decoderInputIds");
  return t5_lm_logits(*this, t5_decode(*this, batch, enc, cache));
}

at::Tensor Model::apply_head(const at::Tensor& h, const Batch& batch) const {
  const double drop = cfg_.classifier_dropout;
  auto dropout = [&](const at::Tensor& x) { return at::dropout(x, drop, training && drop > 0); };
  switch (cfg_.task) {
    case Task::kBase: return h;
    case Task::kCausalLm: return lm_logits(h);
    case Task::kTokenClassification:
      return linear(params_, cfg_.family == Family::kLlama ? "score" : "classifier", dropout(h), true);
    case Task::kQuestionAnswering: return linear(params_, "qa_outputs", h, true);
    case Task::kMaskedLm: return mlm_logits(*this, h);
    case Task::kSeq2SeqLm: fail("ERR_STATE", "seq2seq-lm logits come from forward()");
    case Task::kSequenceClassification: break;
  }
  if (is_decoder(cfg_)) {
    at::Tensor logits = linear(params_, "score", h, false);  // [B, T, L]
    const int64_t t = batch.input_ids.size(1);
    at::Tensor idx = at::arange(t, batch.input_ids.options());
    at::Tensor last;
    if (cfg_.pad_token_id >= 0) last = (idx * (batch.input_ids != cfg_.pad_token_id).to(at::kLong)).argmax(-1);
    else if (batch.attention_mask.defined()) {
      at::Tensor m = batch.attention_mask.narrow(1, batch.attention_mask.size(1) - t, t).to(at::kLong);
      last = (idx * m).argmax(-1);
    } else last = at::full({h.size(0)}, t - 1, batch.input_ids.options());
    at::Tensor rows = at::arange(h.size(0), batch.input_ids.options());
    return logits.index({rows, last});
  }
  at::Tensor first = h.select(1, 0);
  if (cfg_.family == Family::kDistilBert) {
    at::Tensor x = at::relu(linear(params_, "pre_classifier", first, true));
    return linear(params_, "classifier", dropout(x), true);
  }
  if (cfg_.model_type == "roberta") {
    at::Tensor x = at::tanh(linear(params_, "classifier.dense", dropout(first), true));
    return linear(params_, "classifier.out_proj", dropout(x), true);
  }
  at::Tensor pooled = at::tanh(linear(params_, base("pooler.dense"), first, true));
  return linear(params_, "classifier", dropout(pooled), true);
}

at::Tensor Model::loss(const at::Tensor& logits, const at::Tensor& labels) const {
  auto ce = [](const at::Tensor& x, const at::Tensor& y, int64_t ignore) {
    return at::cross_entropy_loss(x.reshape({-1, x.size(-1)}).to(at::kFloat), y.reshape({-1}), {},
                                  at::Reduction::Mean, ignore);
  };
  switch (cfg_.task) {
    case Task::kCausalLm: {
      const int64_t t = logits.size(1);
      if (labels.dim() != 2 || labels.size(1) != t) fail("ERR_SHAPE", "causal-lm labels must have the shape of inputIds");
      return ce(logits.narrow(1, 0, t - 1), labels.narrow(1, 1, t - 1), -100);
    }
    case Task::kSequenceClassification:
      if (cfg_.num_labels == 1) return at::mse_loss(logits.squeeze(-1).to(at::kFloat), labels.to(at::kFloat).view({-1}));
      return ce(logits, labels, -100);
    case Task::kTokenClassification: return ce(logits, labels, -100);
    case Task::kMaskedLm:  // every position, -100 ignored, no shift
      if (labels.dim() != 2 || labels.size(0) != logits.size(0) || labels.size(1) != logits.size(1))
        fail("ERR_SHAPE", "masked-lm labels must have the shape of inputIds");
      return ce(logits, labels, -100);
    case Task::kSeq2SeqLm:  // decoder logits vs labels, -100 ignored, no shift
      if (labels.dim() != 2 || labels.size(0) != logits.size(0) || labels.size(1) != logits.size(1))
        fail("ERR_SHAPE", "seq2seq-lm labels must be [batch, decoder length] (the decoder inputs' shape)");
      return ce(logits, labels, -100);
    case Task::kQuestionAnswering: {
      if (labels.dim() != 2 || labels.size(1) != 2) fail("ERR_SHAPE", "question-answering labels are [batch, 2] (start, end)");
      const int64_t t = logits.size(1);
      at::Tensor start = labels.select(1, 0).clamp(0, t), end = labels.select(1, 1).clamp(0, t);
      return (ce(logits.select(2, 0), start, t) + ce(logits.select(2, 1), end, t)) / 2;
    }
    case Task::kBase: break;
  }
  fail("ERR_STATE", "the base model has no loss; load it with a task");
}

}  // namespace nodetune::nn
