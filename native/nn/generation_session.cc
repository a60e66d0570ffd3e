#include "nn/generation_session.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "nn/generate.h"

namespace nodetune::nn {
namespace {

// The shared processing and draw (nn/generate.h) configured for one row (its logits are row 0).
GenerateOptions row_generate_options(const RowOptions& r) {
  GenerateOptions o;
  static_cast<SamplingOptions&>(o) = r;
  if (r.frequency_penalty != 0) o.frequency_penalty = at::full({1}, r.frequency_penalty, at::kFloat);
  if (r.presence_penalty != 0) o.presence_penalty = at::full({1}, r.presence_penalty, at::kFloat);
  if (!r.bias_tokens.empty()) {
    const int64_t n = int64_t(r.bias_tokens.size());
    o.logit_bias_index = at::zeros({n, 2}, at::kLong);
    o.logit_bias_index.select(1, 1).copy_(at::tensor(r.bias_tokens, at::kLong));
    o.logit_bias_value = at::tensor(r.bias_values, at::kFloat);
  }
  return o;
}

at::Tensor ids_tensor(const std::vector<int64_t>& ids) { return at::tensor(ids, at::kLong).view({1, -1}); }

}  // namespace

void GenerationSession::add(int64_t id, std::vector<int64_t> prompt, RowOptions options) {
  if (prompt.empty()) fail("ERR_ARGUMENT", "session.add(): the prompt has no tokens");
  for (int64_t t : prompt)
    if (t < 0 || t >= vocab_) fail("ERR_ARGUMENT", "session.add(): token id " + std::to_string(t) + " is outside the vocabulary (" + std::to_string(vocab_) + ")");
  for (const auto* list : {&options.bias_tokens, &options.stop_tokens})
    for (int64_t t : *list)
      if (t < 0 || t >= vocab_) fail("ERR_ARGUMENT", "session.add(): token id " + std::to_string(t) + " (logit bias or stop token) is outside the vocabulary");
  if (options.bias_tokens.size() != options.bias_values.size()) fail("ERR_SHAPE", "session.add(): one logit bias value per token");
  if (options.max_new_tokens < 1) fail("ERR_ARGUMENT", "session.add(): maxNewTokens must be at least 1");
  if (options.logprobs > vocab_) fail("ERR_ARGUMENT", "session.add(): logprobs exceeds the vocabulary size");
  Row row;
  row.id = id;
  row.generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  row.options = std::move(options);
  row.tokens = std::move(prompt);
  std::lock_guard<std::mutex> lock(inbox_mutex_);
  pending_.push_back(std::move(row));
}

void GenerationSession::cancel(int64_t id) {
  std::lock_guard<std::mutex> lock(inbox_mutex_);
  cancelled_.push_back(id);
}

StepToken GenerationSession::choose(Row& row, const at::Tensor& logits) {
  const RowOptions& r = row.options;
  GenerateOptions o = row_generate_options(r);
  if (!row.counts.defined() && (r.frequency_penalty != 0 || r.presence_penalty != 0)) {
    // As generate(): the last penalty_context prompt tokens count as generated.
    row.counts = at::zeros({1, logits.size(1)}, at::kFloat);
    const int64_t n = std::min<int64_t>(r.penalty_context, int64_t(row.tokens.size()));
    for (int64_t j = int64_t(row.tokens.size()) - n; j < int64_t(row.tokens.size()); ++j) row.counts.select(1, row.tokens[size_t(j)]).add_(1);
  }
  at::Tensor processed = process_logits(logits, ids_tensor(row.tokens), row.counts, o);
  const int64_t next = sample_next(processed, o, row.generator).item<int64_t>();
  StepToken out;
  out.row = row.id;
  out.token = next;
  if (r.logprobs >= 0) {
    out.scored = true;
    at::Tensor lp = at::log_softmax(processed, -1);
    out.logprob = lp[0][next].item<float>();
    auto [values, indices] = lp.topk(r.logprobs, -1);
    at::Tensor v = values.contiguous(), i = indices.contiguous();
    out.top_logprobs.assign(v.data_ptr<float>(), v.data_ptr<float>() + v.numel());
    out.top_ids.assign(i.data_ptr<int64_t>(), i.data_ptr<int64_t>() + i.numel());
  }
  if (row.counts.defined()) row.counts.select(1, next).add_(1);
  row.tokens.push_back(next);
  row.generated += 1;
  if (std::find(r.stop_tokens.begin(), r.stop_tokens.end(), next) != r.stop_tokens.end()) {
    out.finished = true, out.reason = "stop";
  } else if (row.generated >= r.max_new_tokens) {
    out.finished = true, out.reason = "length";
  }
  return out;
}

// Keeps the running rows marked true (their cache rows and mask rows), then drops the leading positions no
// remaining row uses.
void GenerationSession::keep(const std::vector<bool>& keep_row) {
  std::vector<int64_t> index;
  std::vector<Row> kept;
  for (size_t i = 0; i < rows_.size(); ++i)
    if (keep_row[i]) index.push_back(int64_t(i)), kept.push_back(std::move(rows_[i]));
  if (index.size() == rows_.size()) {
    rows_ = std::move(kept);
    return;
  }
  rows_ = std::move(kept);
  if (rows_.empty()) {
    cache_ = KvCache();
    mask_ = at::Tensor();
    return;
  }
  at::Tensor idx = at::tensor(index, at::kLong);
  cache_.select_rows(idx);
  mask_ = mask_.index_select(0, idx);
  const int64_t unused = (mask_.sum(0) > 0).to(at::kLong).argmax().item<int64_t>();  // first column some row uses
  if (unused > 0) {
    cache_.drop_front(unused);
    mask_ = mask_.narrow(1, unused, mask_.size(1) - unused).contiguous();
  }
}

// Prefills the joining rows in one forward pass (left-padded to the longest prompt; one row alone: exactly as
// generate() with a batch of one), draws their first tokens, and joins their keys/values to the batch's cache.
void GenerationSession::admit(const Model& model, std::vector<Row>& joining, StepResult& out) {
  const auto device = model.params().device();
  const int64_t j = int64_t(joining.size());
  int64_t t = 0, reserve = cache_.capacity();
  for (const Row& r : joining) {
    t = std::max<int64_t>(t, int64_t(r.tokens.size()));
    reserve = std::max<int64_t>(reserve, int64_t(r.tokens.size()) + r.options.max_new_tokens);
  }
  at::Tensor ids = at::zeros({j, t}, at::kLong), mask = at::zeros({j, t}, at::kLong);
  for (int64_t i = 0; i < j; ++i) {
    const auto& tokens = joining[size_t(i)].tokens;
    const int64_t n = int64_t(tokens.size());
    ids[i].narrow(0, t - n, n).copy_(at::tensor(tokens, at::kLong));
    mask[i].narrow(0, t - n, n).fill_(1);
  }
  KvCache cache;
  cache.reserve = reserve;
  Batch b{ids.to(device), mask.to(device), {}};
  at::Tensor h = model.hidden(b, &cache);
  at::Tensor logits = model.lm_logits(h.select(1, t - 1)).to(at::kFloat).cpu();
  std::vector<bool> running(rows_.size(), true);
  for (int64_t i = 0; i < j; ++i) {
    out.tokens.push_back(choose(joining[size_t(i)], logits.narrow(0, i, 1)));
    running.push_back(!out.tokens.back().finished);
  }
  const int64_t len = std::max(cache_.length, t), r = int64_t(rows_.size());
  at::Tensor joined = at::zeros({r + j, len}, at::kLong);
  if (r > 0) joined.narrow(0, 0, r).narrow(1, len - cache_.length, cache_.length).copy_(mask_);
  joined.narrow(0, r, j).narrow(1, len - t, t).copy_(mask);
  cache_.join(cache);
  mask_ = joined;
  for (auto& row : joining) rows_.push_back(std::move(row));
  keep(running);  // rows finished by their first token leave at once
}

StepResult GenerationSession::step(const Model& model) {
  const auto& c = model.config();
  if (!is_decoder(c) || c.task != Task::kCausalLm) fail("ERR_STATE", "a generation session needs a causal-lm decoder model");
  if (model.params().hooks() && model.params().hooks()->prompt().defined())
    fail("ERR_STATE", "a generation session cannot run a prompt-tuning adapter (use generate())");
  at::NoGradGuard no_grad;
  std::vector<Row> joining;
  std::vector<int64_t> cancelled;
  {
    std::lock_guard<std::mutex> lock(inbox_mutex_);
    joining.swap(pending_);
    cancelled.swap(cancelled_);
  }
  auto is_cancelled = [&](int64_t id) { return std::find(cancelled.begin(), cancelled.end(), id) != cancelled.end(); };
  joining.erase(std::remove_if(joining.begin(), joining.end(), [&](const Row& r) { return is_cancelled(r.id); }), joining.end());
  std::vector<bool> keep_row(rows_.size());
  for (size_t i = 0; i < rows_.size(); ++i) keep_row[i] = !is_cancelled(rows_[i].id);
  keep(keep_row);

  StepResult out;
  if (!rows_.empty()) {
    const auto device = model.params().device();
    const int64_t n = int64_t(rows_.size());
    at::Tensor last = at::empty({n, 1}, at::kLong);
    for (int64_t i = 0; i < n; ++i) last[i][0] = rows_[size_t(i)].tokens.back();
    mask_ = at::cat({mask_, at::ones({n, 1}, at::kLong)}, 1);
    Batch b{last.to(device), mask_.to(device), {}};
    at::Tensor h = model.hidden(b, &cache_);
    at::Tensor logits = model.lm_logits(h.select(1, 0)).to(at::kFloat).cpu();
    std::vector<bool> running(rows_.size());
    for (int64_t i = 0; i < n; ++i) {
      out.tokens.push_back(choose(rows_[size_t(i)], logits.narrow(0, i, 1)));
      running[size_t(i)] = !out.tokens.back().finished;
    }
    keep(running);
  }
  if (!joining.empty()) admit(model, joining, out);
  out.rows = int64_t(rows_.size());
  out.length = cache_.length;
  out.capacity = cache_.capacity();
  return out;
}

}  // namespace nodetune::nn
