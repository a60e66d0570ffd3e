// A transformer with its task head: parameters by Hugging Face name, a forward pass to logits
// (or hidden states for the base model), the task's loss, and a KV cache for decoding.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "nn/config.h"
#include "nn/kv_cache.h"
#include "nn/params.h"

namespace nodetune::nn {

struct Batch {
  at::Tensor input_ids;       // [B, T] int64
  at::Tensor attention_mask;  // [B, past + T] (1 = real token) or undefined
  at::Tensor token_type_ids;  // [B, T] or undefined
  at::Tensor prefix;          // [n, H] embeddings put before the tokens (prompt tuning), or undefined
  // Encoder-decoder (seq2seq-lm): the decoder's tokens [B, Tdec] and mask [B, past + Tdec] (undefined: all real).
  at::Tensor decoder_input_ids;
  at::Tensor decoder_attention_mask;
};


class Model {
 public:
  Model(const ModelConfig& config, c10::ScalarType dtype, c10::Device device);

  const ModelConfig& config() const { return cfg_; }
  // Dropout overrides for training (a negative value keeps that probability).
  void set_dropout(double embedding, double attention, double hidden, double classifier);
  Params& params() { return params_; }
  const Params& params() const { return params_; }
  // "<prefix>.<suffix>" (the base model's weight names).
  std::string base(const std::string& suffix) const { return cfg_.prefix + "." + suffix; }
  // Names that belong to the task head (missing ones are initialised, not an error).
  const std::vector<std::string>& head_names() const { return head_names_; }
  void initialize(const std::string& name);

  bool training = false;
  // Recompute each block's activations in backward instead of keeping them (nn/checkpoint.h); training only.
  bool gradient_checkpointing = false;
  bool checkpointing(const KvCache* cache) const { return training && gradient_checkpointing && cache == nullptr; }

  // Hidden states [B, T, H] of the base model (updates `cache` when given; decoders only).
  at::Tensor hidden(const Batch& batch, KvCache* cache) const;
  // The head's output: causal-lm [B, T, V]; sequence-classification [B, L]; token-classification
  // [B, T, L]; question-answering [B, T, 2]; masked-lm [B, T, V]; seq2seq-lm: decoder logits [B, Tdec, V]
  // (the cache keeps the encoder output); base: hidden states (T5: the encoder's).
  at::Tensor forward(const Batch& batch, KvCache* cache) const;
  // The task's loss (Hugging Face conventions) for logits from forward().
  at::Tensor loss(const at::Tensor& logits, const at::Tensor& labels) const;
  // forward() then loss(); with prompt tuning on a causal LM the loss also covers the last virtual token
  // predicting the first label (labels padded with -100 over the virtual tokens, as PEFT does).
  at::Tensor forward_loss(const Batch& batch, const at::Tensor& labels) const;
  // How many terms forward_loss() averages over for these labels (its denominator; a host count): the labels that
  // are not -100 (causal-lm: after the shift, or all of them with prompt tuning, whose last virtual token predicts
  // the first label); rows for regression (num_labels 1) and question answering (exact for spans inside the sequence,
  // as the data pipeline makes them: a position beyond it is ignored by the loss, still counted here). Gradient
  // accumulation weighs a micro-batch's mean loss by its share of the window's terms (train/accumulate.h).
  int64_t loss_terms(const at::Tensor& labels) const;
  // Decoder logits for the next token at every position (the LM head on hidden states).
  at::Tensor lm_logits(const at::Tensor& hidden) const;
  // The decoder's output projection [V, H]: the word embeddings when tied, else lm_head.weight.
  const at::Tensor& lm_head_weight() const;
  // Causal-LM loss from hidden states [B, T, H] and labels [B, T] (shifted inside, -100 ignored).
  at::Tensor causal_lm_loss(const at::Tensor& hidden, const at::Tensor& labels) const;

 private:
  void add_head();
  at::Tensor hidden_of(const Batch& batch, KvCache* cache) const;
  at::Tensor hidden_prompted(const Batch& batch, KvCache* cache, bool strip) const;
  at::Tensor apply_head(const at::Tensor& h, const Batch& batch) const;

  ModelConfig cfg_;
  Params params_;
  std::vector<std::string> head_names_;
};

// Architectures (nn/gpt2.cc, nn/llama.cc, nn/bert.cc).
void register_gpt2(Model& m);
at::Tensor gpt2_hidden(const Model& m, const Batch& b, KvCache* cache);
void register_llama(Model& m);
at::Tensor llama_hidden(const Model& m, const Batch& b, KvCache* cache);
void register_bert(Model& m);
at::Tensor bert_hidden(const Model& m, const Batch& b);
void register_distilbert(Model& m);
at::Tensor distilbert_hidden(const Model& m, const Batch& b);
// T5 / mT5 (nn/t5.cc): encoder hidden states, decoder hidden states (self-attention cached in `cache`, the
// cross-attention keys/values too), the LM head, transformers' _shift_right of labels, and weight init.
void register_t5(Model& m);
void t5_initialize(Model& m, const std::string& name);
at::Tensor t5_encode(const Model& m, const Batch& b);
at::Tensor t5_decode(const Model& m, const Batch& b, const at::Tensor& encoder_out, KvCache* cache);
at::Tensor t5_lm_logits(const Model& m, const at::Tensor& h);
at::Tensor t5_shift_right(const ModelConfig& c, const at::Tensor& labels);

}  // namespace nodetune::nn
