#include "nn/generate.h"

#include <ATen/core/grad_mode.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "nn/beam_search.h"

namespace nodetune::nn {

at::Tensor choose_next(at::Tensor logits, const at::Tensor& sequences, const GenerateOptions& o, at::Generator& gen) {
  if (o.repetition_penalty != 1.0) {
    at::Tensor seen = logits.gather(1, sequences);
    seen = at::where(seen < 0, seen * o.repetition_penalty, seen / o.repetition_penalty);
    logits = logits.scatter(1, sequences, seen);
  }
  if (o.temperature <= 0) return logits.argmax(-1);
  logits = logits / o.temperature;
  const double neg_inf = -std::numeric_limits<float>::infinity();
  if (o.top_k > 0 && o.top_k < logits.size(-1)) {
    at::Tensor kth = std::get<0>(logits.topk(o.top_k, -1)).narrow(1, o.top_k - 1, 1);
    logits = logits.masked_fill(logits < kth, neg_inf);
  }
  if (o.top_p < 1.0) {
    auto [sorted, order] = logits.sort(-1, /*descending=*/true);
    at::Tensor cumulative = at::softmax(sorted, -1).cumsum(-1);
    // Drop a token when the tokens before it already reach top_p (the first token always stays).
    at::Tensor drop = (cumulative - at::softmax(sorted, -1)) >= o.top_p;
    at::Tensor remove = at::zeros_like(drop).scatter(1, order, drop);
    logits = logits.masked_fill(remove, neg_inf);
  }
  at::Tensor probs = at::softmax(logits, -1);
  return at::multinomial(probs, 1, false, gen).squeeze(1);
}

namespace {

// Beam search for a decoder-only model: prompt + the best beam per row, shorter rows padded with `fill`.
at::Tensor generate_beams(const Model& model, const at::Tensor& ids, at::Tensor mask, const GenerateOptions& o, int64_t fill) {
  if (o.temperature > 0) fail("ERR_ARGUMENT", "beam search is greedy: temperature must be 0 with numBeams > 1");
  const auto device = model.params().device();
  const int64_t nb = o.num_beams, batch = ids.size(0);
  mask = mask.repeat_interleave(nb, 0);
  KvCache cache;
  Batch step{ids.to(at::kLong).repeat_interleave(nb, 0).to(device), mask.to(device), {}};
  BeamStep fn = [&](const at::Tensor& tokens, const at::Tensor& origin) {
    if (tokens.defined()) {
      for (auto* list : {&cache.k, &cache.v})
        for (auto& t : *list) t = t.index_select(0, origin.to(t.device()));
      mask = at::cat({mask.index_select(0, origin), at::ones({batch * nb, 1}, mask.options())}, 1);
      step = Batch{tokens.unsqueeze(1).to(device), mask.to(device), {}};
    }
    at::Tensor h = model.hidden(step, &cache);
    return model.lm_logits(h.select(1, h.size(1) - 1)).to(at::kCPU, at::kFloat);
  };
  auto rows = beam_search(batch, BeamOptions{nb, o.max_new_tokens, o.eos_token_id, o.length_penalty}, fn);
  size_t longest = 0;
  for (const auto& r : rows) longest = std::max(longest, r.size());
  at::Tensor gen = at::full({batch, int64_t(longest)}, fill, at::kLong);
  for (int64_t b = 0; b < batch; ++b)
    for (size_t j = 0; j < rows[b].size(); ++j) gen[b][int64_t(j)] = rows[b][j];
  return at::cat({ids.to(at::kLong).cpu(), gen}, 1);
}

}  // namespace

at::Tensor generate(const Model& model, const at::Tensor& ids, const at::Tensor& attention_mask,
                    const GenerateOptions& o) {
  if (!is_decoder(model.config()) || model.config().task != Task::kCausalLm)
    fail("ERR_STATE", "generate() needs a causal-lm model (task is not causal-lm)");
  at::NoGradGuard no_grad;
  const auto device = model.params().device();
  const int64_t batch = ids.size(0);
  at::Tensor mask = attention_mask.defined() ? attention_mask.to(at::kLong) : at::ones_like(ids, at::kLong);
  at::Tensor sequences = ids.to(at::kLong);  // CPU copy of everything so far
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  const int64_t fill = o.pad_token_id >= 0 ? o.pad_token_id : (o.eos_token_id >= 0 ? o.eos_token_id : 0);
  if (o.num_beams > 1) return generate_beams(model, ids, mask, o, fill);
  at::Tensor finished = at::zeros({batch}, at::kBool);
  KvCache cache;
  Batch step{ids.to(device).to(at::kLong), mask.to(device), {}};
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    at::Tensor h = model.hidden(step, &cache);
    at::Tensor logits = model.lm_logits(h.select(1, h.size(1) - 1)).to(at::kFloat).cpu();
    at::Tensor next = choose_next(logits, sequences, o, gen);
    next = at::where(finished, at::full_like(next, fill), next);
    if (o.eos_token_id >= 0) finished = finished | (next == o.eos_token_id);
    sequences = at::cat({sequences, next.unsqueeze(1)}, 1);
    if (finished.all().item<bool>()) break;
    mask = at::cat({mask, at::ones({batch, 1}, mask.options())}, 1);
    step = Batch{next.unsqueeze(1).to(device), mask.to(device), {}};
  }
  return sequences;
}

}  // namespace nodetune::nn
