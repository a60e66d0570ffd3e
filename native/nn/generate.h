// Autoregressive decoding with a KV cache: greedy (temperature 0) or sampled (temperature, top-k,
// top-p, repetition penalty), batched prompts with left padding.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "nn/model.h"

namespace nodetune::nn {

struct GenerateOptions {
  int64_t max_new_tokens = 16;
  double temperature = 0.0;  // 0: greedy
  int64_t top_k = 0;         // 0: off
  double top_p = 1.0;        // 1: off
  double repetition_penalty = 1.0;
  int64_t eos_token_id = -1;  // -1: none
  int64_t pad_token_id = -1;  // fills finished rows; -1: use eos
  uint64_t seed = 0;
  int64_t num_beams = 1;        // > 1: beam search (nn/beam_search.h), greedy only
  double length_penalty = 1.0;  // beam scores: sum log-prob / length ** length_penalty
};

// ids [B, T] (left-padded when `attention_mask` has zeros) -> [B, T + generated] (beam search: the best beam per
// row, finished rows padded).
at::Tensor generate(const Model& model, const at::Tensor& ids, const at::Tensor& attention_mask,
                    const GenerateOptions& options);

// Encoder-decoder (seq2seq-lm): the encoder runs once, the decoder starts from decoder_start_token_id with a
// KV cache. Per row, the generated tokens without the start token, up to and including EOS when produced.
std::vector<std::vector<int64_t>> generate_seq2seq(const Model& model, const at::Tensor& ids, const at::Tensor& attention_mask,
                                                   const GenerateOptions& options);

// Picks the next token per row from logits [B, V] (float32, CPU) after the options' processing.
at::Tensor choose_next(at::Tensor logits, const at::Tensor& sequences, const GenerateOptions& options,
                       at::Generator& generator);

}  // namespace nodetune::nn
