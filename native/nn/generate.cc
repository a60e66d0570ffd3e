#include "nn/generate.h"

#include <ATen/core/grad_mode.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "nn/beam_search.h"

namespace nodetune::nn {

at::Tensor process_logits(at::Tensor logits, const at::Tensor& sequences, const at::Tensor& counts,
                          const GenerateOptions& o) {
  if (o.repetition_penalty != 1.0) {
    at::Tensor seen = logits.gather(1, sequences);
    seen = at::where(seen < 0, seen * o.repetition_penalty, seen / o.repetition_penalty);
    logits = logits.scatter(1, sequences, seen);
  }
  if (counts.defined()) {
    if (o.frequency_penalty.defined()) logits = logits - counts * o.frequency_penalty.unsqueeze(1);
    if (o.presence_penalty.defined()) logits = logits - (counts > 0).to(at::kFloat) * o.presence_penalty.unsqueeze(1);
  }
  if (o.logit_bias_index.defined() && o.logit_bias_index.size(0) > 0)
    logits = logits.index_put({o.logit_bias_index.select(1, 0), o.logit_bias_index.select(1, 1)}, o.logit_bias_value, /*accumulate=*/true);
  return logits;
}

at::Tensor sample_next(at::Tensor logits, const GenerateOptions& o, at::Generator& gen) {
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

bool has_row_options(const GenerateOptions& o) {
  return o.presence_penalty.defined() || o.frequency_penalty.defined() || o.logit_bias_index.defined() || o.logprobs >= 0;
}

at::Tensor choose_next(at::Tensor logits, const at::Tensor& sequences, const GenerateOptions& o, at::Generator& gen) {
  return sample_next(process_logits(std::move(logits), sequences, at::Tensor(), o), o, gen);
}

namespace {

// Beam search for a decoder-only model: prompt + the best beam per row, shorter rows padded with `fill`.
at::Tensor generate_beams(const Model& model, const at::Tensor& ids, at::Tensor mask, const GenerateOptions& o, int64_t fill) {
  if (o.temperature > 0) fail("ERR_ARGUMENT", "beam search is greedy: temperature must be 0 with numBeams > 1");
  const auto device = model.params().device();
  const int64_t nb = o.num_beams, batch = ids.size(0);
  mask = mask.repeat_interleave(nb, 0);
  KvCache cache;
  cache.reserve = ids.size(1) + o.max_new_tokens;
  Batch step{ids.to(at::kLong).repeat_interleave(nb, 0).to(device), mask.to(device), {}};
  BeamStep fn = [&](const at::Tensor& tokens, const at::Tensor& origin) {
    if (tokens.defined()) {
      cache.select_rows(origin);
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

// C++ re-checks what the per-row options' shapes rely on (TypeScript validates values with precise messages).
void check_row_options(const GenerateOptions& o, int64_t batch, int64_t vocab) {
  for (const at::Tensor* t : {&o.presence_penalty, &o.frequency_penalty, &o.penalty_context})
    if (t->defined() && (t->dim() != 1 || t->size(0) != batch)) fail("ERR_SHAPE", "generate(): penalties need one value per row");
  if (o.logit_bias_index.defined()) {
    const at::Tensor& i = o.logit_bias_index;
    if (i.dim() != 2 || i.size(1) != 2 || !o.logit_bias_value.defined() || o.logit_bias_value.numel() != i.size(0))
      fail("ERR_SHAPE", "generate(): logit bias needs [N, 2] (row, token) indices and N values");
    if (i.size(0) > 0 && (i.select(1, 0).min().item<int64_t>() < 0 || i.select(1, 0).max().item<int64_t>() >= batch ||
                          i.select(1, 1).min().item<int64_t>() < 0 || i.select(1, 1).max().item<int64_t>() >= vocab))
      fail("ERR_ARGUMENT", "generate(): a logit bias names a row or token id out of range (vocabulary " + std::to_string(vocab) + ")");
  }
  if (o.logprobs > vocab) fail("ERR_ARGUMENT", "generate(): logprobs exceeds the vocabulary size");
}

// The penalties' token counts before the first step: the last penalty_context[b] prompt tokens of each row.
at::Tensor initial_counts(const at::Tensor& ids, const GenerateOptions& o, const at::Tensor& logits) {
  at::Tensor counts = at::zeros_like(logits);
  if (!o.penalty_context.defined()) return counts;
  const int64_t t = ids.size(1);
  at::Tensor first = t - o.penalty_context.to(at::kLong).unsqueeze(1);  // [B, 1]
  at::Tensor take = (at::arange(t, at::kLong).unsqueeze(0) >= first).to(at::kFloat);
  return counts.scatter_add_(1, ids, take);
}

}  // namespace

at::Tensor generate(const Model& model, const at::Tensor& ids, const at::Tensor& attention_mask,
                    const GenerateOptions& o) {
  return generate_detailed(model, ids, attention_mask, o).sequences;
}

Generated generate_detailed(const Model& model, const at::Tensor& ids, const at::Tensor& attention_mask,
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
  const bool rows = has_row_options(o);
  if (o.num_beams > 1) {
    if (rows) fail("ERR_ARGUMENT", "beam search takes no penalties, logit bias or logprobs");
    return Generated{generate_beams(model, ids, mask, o, fill), {}, {}, {}};
  }
  at::Tensor finished = at::zeros({batch}, at::kBool);
  at::Tensor counts;  // generated tokens per row and vocabulary entry, when penalties need them
  std::vector<at::Tensor> chosen, top_ids, top_lps;
  KvCache cache;
  cache.reserve = ids.size(1) + o.max_new_tokens;  // one allocation per layer, written in place per token
  Batch step{ids.to(device).to(at::kLong), mask.to(device), {}};
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    at::Tensor h = model.hidden(step, &cache);
    at::Tensor logits = model.lm_logits(h.select(1, h.size(1) - 1)).to(at::kFloat).cpu();
    if (i == 0 && rows) check_row_options(o, batch, logits.size(1));
    if (i == 0 && (o.presence_penalty.defined() || o.frequency_penalty.defined())) counts = initial_counts(sequences, o, logits);
    logits = process_logits(logits, sequences, counts, o);
    at::Tensor next = sample_next(logits, o, gen);
    if (o.logprobs >= 0) {
      at::Tensor lp = at::log_softmax(logits, -1);
      chosen.push_back(lp.gather(1, next.unsqueeze(1)).squeeze(1));
      auto [values, indices] = lp.topk(o.logprobs, -1);
      top_lps.push_back(values);
      top_ids.push_back(indices);
    }
    next = at::where(finished, at::full_like(next, fill), next);
    if (counts.defined()) counts.scatter_add_(1, next.unsqueeze(1), at::ones({batch, 1}, counts.options()));
    if (o.eos_token_id >= 0) finished = finished | (next == o.eos_token_id);
    sequences = at::cat({sequences, next.unsqueeze(1)}, 1);
    if (finished.all().item<bool>()) break;
    mask = at::cat({mask, at::ones({batch, 1}, mask.options())}, 1);
    step = Batch{next.unsqueeze(1).to(device), mask.to(device), {}};
  }
  Generated out{sequences, {}, {}, {}};
  if (o.logprobs >= 0) {
    const int64_t k = o.logprobs;
    out.logprobs = chosen.empty() ? at::zeros({batch, 0}) : at::stack(chosen, 1);
    out.top_ids = top_ids.empty() ? at::zeros({batch, 0, k}, at::kLong) : at::stack(top_ids, 1);
    out.top_logprobs = top_lps.empty() ? at::zeros({batch, 0, k}) : at::stack(top_lps, 1);
  }
  return out;
}

}  // namespace nodetune::nn
