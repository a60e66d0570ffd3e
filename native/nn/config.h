// A model's configuration as the native code needs it: plain values, validated in TypeScript
// (lib/models/config.ts) from a Hugging Face config.json. No N-API here.
#pragma once
#include <cstdint>
#include <string>

namespace nodetune::nn {

enum class Family { kGpt2, kLlama, kBert, kDistilBert, kT5 };
enum class Task { kBase, kCausalLm, kSequenceClassification, kTokenClassification, kQuestionAnswering,
                  kMaskedLm, kSeq2SeqLm };

struct ModelConfig {
  Family family = Family::kLlama;
  std::string model_type;  // gpt2 | llama | mistral | qwen2 | bert | roberta | distilbert
  Task task = Task::kCausalLm;
  std::string prefix;  // base-model prefix of weight names: transformer | model | bert | roberta | distilbert

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t intermediate_size = 0;
  int64_t max_positions = 0;
  int64_t type_vocab_size = 0;  // 0: no token-type embeddings
  int64_t num_labels = 2;

  double norm_eps = 1e-5;
  std::string act = "gelu";  // gelu | gelu_tanh | relu | silu | quick_gelu

  // Rotary embeddings (llama family).
  double rope_theta = 10000.0;
  std::string rope_type = "default";  // default | linear | llama3
  double rope_factor = 1.0;
  double rope_low_freq_factor = 1.0;
  double rope_high_freq_factor = 4.0;
  int64_t rope_original_max_positions = 8192;
  int64_t sliding_window = 0;  // 0: none

  bool tie_word_embeddings = true;
  bool qkv_bias = false;   // q/k/v projections have a bias
  bool o_bias = false;     // output projection has a bias
  bool mlp_bias = false;
  bool scale_attn_by_inverse_layer_idx = false;  // gpt2

  double embd_dropout = 0.0;
  double attn_dropout = 0.0;
  double resid_dropout = 0.0;  // hidden_dropout for encoders
  double classifier_dropout = 0.0;

  int64_t pad_token_id = -1;     // -1: none
  int64_t position_offset = 0;   // roberta: padding_idx + 1
  bool roberta_positions = false;
  double init_range = 0.02;

  // T5 / mT5 (encoder-decoder): num_layers is the encoder's, head_dim is d_kv, intermediate_size d_ff.
  int64_t num_decoder_layers = 0;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  bool gated_ffn = false;  // feed_forward_proj "gated-<act>": wi_0, wi_1
  double init_factor = 1.0;
  int64_t decoder_start_token_id = 0;
  bool per_layer_relative_bias = false;  // umt5: every block has its own relative_attention_bias
};

inline bool is_decoder(const ModelConfig& c) { return c.family == Family::kGpt2 || c.family == Family::kLlama; }

}  // namespace nodetune::nn
