// Decoding for encoder-decoder models: the encoder runs once (its output and the cross-attention keys/values stay
// in the KV cache), then one decoder token per step, greedy/sampled through choose_next or by beam search.
#include <ATen/core/grad_mode.h>
#include <ATen/CPUGeneratorImpl.h>

#include "core/error.h"
#include "nn/beam_search.h"
#include "nn/generate.h"

namespace nodetune::nn {
std::vector<std::vector<int64_t>> generate_seq2seq(const Model& model, const at::Tensor& ids, const at::Tensor& attention_mask,
                                                   const GenerateOptions& o) {
  const auto& c = model.config();
  if (c.task != Task::kSeq2SeqLm) fail("ERR_STATE", "generate_seq2seq() needs a seq2seq-lm model");
  if (has_row_options(o)) fail("ERR_ARGUMENT", "seq2seq generation takes no penalties, logit bias or logprobs");
  at::NoGradGuard no_grad;
  const auto device = model.params().device();
  const int64_t batch = ids.size(0), start = c.decoder_start_token_id;
  at::Tensor mask = attention_mask.defined() ? attention_mask.to(at::kLong) : at::ones_like(ids, at::kLong);
  KvCache cache;
  if (o.num_beams > 1) {
    if (o.temperature > 0) fail("ERR_ARGUMENT", "beam search is greedy: temperature must be 0 with numBeams > 1");
    const int64_t nb = o.num_beams;
    Batch b{ids.to(at::kLong).repeat_interleave(nb, 0).to(device), mask.repeat_interleave(nb, 0).to(device), {}};
    b.decoder_input_ids = at::full({batch * nb, 1}, start, at::TensorOptions().dtype(at::kLong).device(device));
    BeamStep step = [&](const at::Tensor& tokens, const at::Tensor& origin) {
      if (tokens.defined()) {
        cache.select_rows(origin);
        b.decoder_input_ids = tokens.to(device).unsqueeze(1);
      }
      at::Tensor logits = model.forward(b, &cache);
      return logits.select(1, logits.size(1) - 1).to(at::kCPU, at::kFloat);
    };
    return beam_search(batch, BeamOptions{nb, o.max_new_tokens, o.eos_token_id, o.length_penalty}, step);
  }
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  at::Tensor sequences = at::full({batch, 1}, start, at::kLong);  // CPU, start token first (repetition penalty sees it)
  std::vector<std::vector<int64_t>> out(batch);
  std::vector<bool> finished(batch, false);
  Batch b{ids.to(at::kLong).to(device), mask.to(device), {}};
  b.decoder_input_ids = sequences.to(device);
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    at::Tensor logits = model.forward(b, &cache);
    logits = logits.select(1, logits.size(1) - 1).to(at::kCPU, at::kFloat);
    at::Tensor next = choose_next(logits, sequences, o, gen);
    auto n = next.accessor<int64_t, 1>();
    bool all = true;
    for (int64_t r = 0; r < batch; ++r) {
      if (!finished[r]) out[r].push_back(n[r]);
      if (n[r] == o.eos_token_id) finished[r] = true;
      all = all && finished[r];
    }
    if (all) break;
    sequences = at::cat({sequences, next.unsqueeze(1)}, 1);
    b.decoder_input_ids = next.unsqueeze(1).to(device);
  }
  return out;
}

}  // namespace nodetune::nn
