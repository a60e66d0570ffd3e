// Incremental decoding over a changing batch (continuous batching): rows join with their prompt (the rows joining at
// one step prefilled together, left-padded; then their keys/values join the batch's KV cache right-aligned, the
// attention mask hiding the gaps), every step
// decodes one token for each running row, finished or cancelled rows leave at once (their cache rows are freed).
// Sampling options are per row, so different requests share a step. Decoder-only causal LMs (Llama family,
// GPT-2); prompt-tuning adapters are refused (their virtual tokens sit at the front of every row).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "nn/generate.h"
#include "nn/model.h"

namespace nodetune::nn {

struct RowOptions : SamplingOptions {
  double presence_penalty = 0.0;  // OpenAI's, over the generated tokens (and the last penalty_context prompt tokens)
  double frequency_penalty = 0.0;
  int64_t penalty_context = 0;
  std::vector<int64_t> bias_tokens;  // logit bias: logits[bias_tokens[i]] += bias_values[i]
  std::vector<float> bias_values;
  std::vector<int64_t> stop_tokens;  // generating one finishes the row (it is reported)
  int64_t logprobs = -1;  // >= 0: the chosen token's log-probability and this many alternatives
};

// One generated token of one row.
struct StepToken {
  int64_t row = 0;
  int64_t token = 0;
  bool finished = false;
  std::string reason;  // when finished: "stop" (a stop token) or "length" (max_new_tokens)
  bool scored = false;  // logprob, top_ids and top_logprobs were asked for (RowOptions::logprobs >= 0)
  float logprob = 0;
  std::vector<int64_t> top_ids;
  std::vector<float> top_logprobs;
};

struct StepResult {
  std::vector<StepToken> tokens;
  int64_t rows = 0;      // running rows after the step
  int64_t length = 0;    // cached positions per row (the longest row's)
  int64_t capacity = 0;  // allocated positions per row
};

class GenerationSession {
 public:
  explicit GenerationSession(int64_t vocab_size) : vocab_(vocab_size) {}

  // Any thread: queued until the next step (row ids are the caller's, unique per session).
  void add(int64_t row, std::vector<int64_t> prompt, RowOptions options);
  void cancel(int64_t row);

  // Compute thread, under the model's lock: frees the cancelled rows, decodes one token for every running row,
  // prefills the rows added since the last step (their first token), then retires the finished rows.
  StepResult step(const Model& model);

 private:
  struct Row {
    int64_t id = 0;
    RowOptions options;
    std::vector<int64_t> tokens;  // prompt then generated
    int64_t generated = 0;
    at::Tensor counts;  // [1, V] float32: the penalties' token counts (undefined when off)
    at::Generator generator;
  };

  StepToken choose(Row& row, const at::Tensor& logits);  // logits [1, V] float32 CPU
  void keep(const std::vector<bool>& keep_row);
  void admit(const Model& model, std::vector<Row>& joining, StepResult& out);

  int64_t vocab_;
  std::mutex inbox_mutex_;
  std::vector<Row> pending_;
  std::vector<int64_t> cancelled_;
  std::vector<Row> rows_;  // running, in the cache's row order
  KvCache cache_;
  at::Tensor mask_;  // [rows, cache length] int64 (CPU): 0 where a row has no position yet
};

}  // namespace nodetune::nn
