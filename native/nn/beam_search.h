// Beam search over any autoregressive step function (decoder-only and encoder-decoder models share it).
// Semantics follow transformers' BeamSearchScorer (early_stopping false): per row, the 2 * beams best
// continuations by summed log-probability; one ending in EOS and ranked among the first `beams` becomes a
// finished hypothesis scored sum_logprob / length ** length_penalty (length: generated tokens, EOS included);
// a row is done when it has `beams` hypotheses and the best live score / current length ** length_penalty
// cannot beat the worst of them; rows still running after max_new_tokens add their live beams.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace nodetune::nn {

struct BeamOptions {
  int64_t num_beams = 1;
  int64_t max_new_tokens = 16;
  int64_t eos_token_id = -1;  // -1: none
  double length_penalty = 1.0;
};

// Called first with undefined tensors (logits for the initial state of batch * beams rows, beams of a row
// adjacent), then with the chosen tokens [batch * beams] and, for each new beam, the index of the beam it
// extends (reorder any cache by it before feeding the tokens). Returns logits [batch * beams, V].
using BeamStep = std::function<at::Tensor(const at::Tensor& tokens, const at::Tensor& origin)>;

// The best hypothesis of each row: its generated tokens (ending with EOS when it produced one).
std::vector<std::vector<int64_t>> beam_search(int64_t batch, const BeamOptions& options, const BeamStep& step);

}  // namespace nodetune::nn
