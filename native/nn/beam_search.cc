#include "nn/beam_search.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace nodetune::nn {
namespace {

struct Hypothesis {
  double score;
  std::vector<int64_t> tokens;
};

// Keeps the `beams` best hypotheses of a row, best first (a new one ranks after equal scores).
void keep_best(std::vector<Hypothesis>& hyps, Hypothesis h, int64_t beams) {
  auto at = std::upper_bound(hyps.begin(), hyps.end(), h.score, [](double s, const Hypothesis& x) { return s > x.score; });
  hyps.insert(at, std::move(h));
  if (int64_t(hyps.size()) > beams) hyps.pop_back();
}

}  // namespace

std::vector<std::vector<int64_t>> beam_search(int64_t batch, const BeamOptions& o, const BeamStep& step) {
  const int64_t nb = o.num_beams;
  if (nb < 1) fail("ERR_ARGUMENT", "numBeams must be >= 1");
  std::vector<std::vector<int64_t>> out(batch);
  if (o.max_new_tokens <= 0) return out;
  const double lp = o.length_penalty;
  auto normalised = [lp](double sum, size_t length) { return sum / std::pow(double(length), lp); };
  std::vector<double> scores(batch * nb, -1e9);
  for (int64_t b = 0; b < batch; ++b) scores[b * nb] = 0.0;
  std::vector<std::vector<int64_t>> seqs(batch * nb);
  std::vector<std::vector<Hypothesis>> hyps(batch);
  std::vector<bool> done(batch, false);
  at::Tensor logits = step(at::Tensor(), at::Tensor());
  for (int64_t s = 0; s < o.max_new_tokens; ++s) {
    at::Tensor total = at::log_softmax(logits.to(at::kCPU, at::kDouble), -1);
    const int64_t vocab = total.size(1);
    total = total + at::tensor(scores, at::kDouble).unsqueeze(1);
    auto [top, idx] = total.view({batch, nb * vocab}).topk(2 * nb, 1);
    auto topa = top.accessor<double, 2>();
    auto idxa = idx.accessor<int64_t, 2>();
    std::vector<int64_t> tokens(batch * nb, 0), origin(batch * nb);
    std::vector<std::vector<int64_t>> next_seqs(batch * nb);
    for (int64_t b = 0; b < batch; ++b) {
      if (done[b]) {  // finished rows keep running on padding, as transformers does
        for (int64_t j = 0; j < nb; ++j) origin[b * nb + j] = b * nb + j, next_seqs[b * nb + j] = seqs[b * nb + j];
        continue;
      }
      int64_t filled = 0;
      for (int64_t rank = 0; rank < 2 * nb && filled < nb; ++rank) {
        const int64_t beam = b * nb + idxa[b][rank] / vocab, token = idxa[b][rank] % vocab;
        const double score = topa[b][rank];
        std::vector<int64_t> seq = seqs[beam];
        seq.push_back(token);
        if (token == o.eos_token_id) {
          if (rank >= nb) continue;
          const double h = normalised(score, seq.size());
          keep_best(hyps[b], Hypothesis{h, std::move(seq)}, nb);
          continue;
        }
        const int64_t slot = b * nb + filled++;
        tokens[slot] = token, origin[slot] = beam, scores[slot] = score, next_seqs[slot] = std::move(seq);
      }
      const double best = topa[b][0];
      if (int64_t(hyps[b].size()) == nb && hyps[b].back().score >= normalised(best, size_t(s + 1))) done[b] = true;
    }
    seqs = std::move(next_seqs);
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; }) || s + 1 == o.max_new_tokens) break;
    logits = step(at::tensor(tokens, at::kLong), at::tensor(origin, at::kLong));
  }
  for (int64_t b = 0; b < batch; ++b) {
    if (!done[b])
      for (int64_t j = 0; j < nb; ++j) {
        const auto& seq = seqs[b * nb + j];
        keep_best(hyps[b], Hypothesis{normalised(scores[b * nb + j], seq.size()), seq}, nb);
      }
    out[b] = hyps[b].front().tokens;
  }
  return out;
}

}  // namespace nodetune::nn
