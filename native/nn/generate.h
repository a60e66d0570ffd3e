// Autoregressive decoding with a KV cache: greedy (temperature 0) or sampled (temperature, top-k,
// top-p, repetition penalty), batched prompts with left padding. Per row: presence/frequency penalties, a logit
// bias, and the chosen tokens' log-probabilities with the best alternatives (OpenAI's sampling fields).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "nn/model.h"

namespace nodetune::nn {

// The decoding settings generate() and a generation session's rows share.
struct SamplingOptions {
  int64_t max_new_tokens = 16;
  double temperature = 0.0;  // 0: greedy
  int64_t top_k = 0;         // 0: off
  double top_p = 1.0;        // 1: off
  double repetition_penalty = 1.0;
  uint64_t seed = 0;
};

struct GenerateOptions : SamplingOptions {
  int64_t eos_token_id = -1;  // -1: none
  int64_t pad_token_id = -1;  // fills finished rows; -1: use eos
  int64_t num_beams = 1;        // > 1: beam search (nn/beam_search.h), greedy only
  double length_penalty = 1.0;  // beam scores: sum log-prob / length ** length_penalty
  // Per row (undefined: off), as OpenAI defines them over the tokens generated so far:
  // logits[t] -= count[t] * frequency_penalty + (count[t] > 0) * presence_penalty.
  at::Tensor presence_penalty;   // [B] float32
  at::Tensor frequency_penalty;  // [B] float32
  at::Tensor penalty_context;    // [B] int: trailing prompt tokens the penalties count as generated (undefined: none)
  at::Tensor logit_bias_index;   // [N, 2] int64 (row, token): logits[row][token] += logit_bias_value[i]
  at::Tensor logit_bias_value;   // [N] float32
  int64_t logprobs = -1;         // >= 0: report log-probabilities with this many alternatives (-1: none)
};

// generate()'s sequences plus, when options.logprobs >= 0, the log-softmax of the processed logits (after the
// penalties and the bias, before temperature, top-k and top-p) at each generated step.
struct Generated {
  at::Tensor sequences;     // [B, T + n] int64
  at::Tensor logprobs;      // [B, n] float32: the chosen tokens'
  at::Tensor top_ids;       // [B, n, k] int64: the k most probable tokens, best first
  at::Tensor top_logprobs;  // [B, n, k] float32
};

// ids [B, T] (left-padded when `attention_mask` has zeros) -> [B, T + generated] (beam search: the best beam per
// row, finished rows padded).
at::Tensor generate(const Model& model, const at::Tensor& ids, const at::Tensor& attention_mask,
                    const GenerateOptions& options);
Generated generate_detailed(const Model& model, const at::Tensor& ids, const at::Tensor& attention_mask,
                            const GenerateOptions& options);

// Encoder-decoder (seq2seq-lm): the encoder runs once, the decoder starts from decoder_start_token_id with a
// KV cache. Per row, the generated tokens without the start token, up to and including EOS when produced.
std::vector<std::vector<int64_t>> generate_seq2seq(const Model& model, const at::Tensor& ids, const at::Tensor& attention_mask,
                                                   const GenerateOptions& options);

// Picks the next token per row from logits [B, V] (float32, CPU) after the options' processing.
at::Tensor choose_next(at::Tensor logits, const at::Tensor& sequences, const GenerateOptions& options,
                       at::Generator& generator);

// The processing before sampling: repetition penalty (over `sequences`), then the per-row presence/frequency
// penalties (over `counts` [B, V], the generated tokens' counts; undefined when off) and the logit bias.
at::Tensor process_logits(at::Tensor logits, const at::Tensor& sequences, const at::Tensor& counts,
                          const GenerateOptions& options);

// Whether any per-row option (penalties, logit bias, logprobs) is set: decoder-only greedy/sampled decoding only.
bool has_row_options(const GenerateOptions& options);

// Temperature, top-k, top-p and the draw (or argmax when greedy) on processed logits [B, V].
at::Tensor sample_next(at::Tensor logits, const GenerateOptions& options, at::Generator& generator);

}  // namespace nodetune::nn
