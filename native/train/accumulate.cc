#include "train/accumulate.h"

#include "core/error.h"
#include "nn/layers.h"
#include "train/autocast.h"

namespace nodetune::train {
namespace {

// Weight per micro-batch (0: not run).
std::vector<double> window_weights(const nn::Model& model, const std::vector<MicroBatch>& window) {
  std::vector<double> weights(window.size(), 0.0);
  weights[0] = 1.0;
  if (window.size() == 1) return weights;
  std::vector<int64_t> terms;
  int64_t total = 0;
  for (const auto& mb : window) total += terms.emplace_back(model.loss_terms(mb.labels));
  if (total == 0) return weights;
  for (size_t i = 0; i < window.size(); ++i) weights[i] = double(terms[i]) / double(total);
  return weights;
}

}  // namespace

at::Tensor accumulate_gradients(nn::Model& model, const std::vector<MicroBatch>& window, c10::ScalarType autocast,
                                const LossScaler* scaler) {
  if (window.empty()) fail("ERR_ARGUMENT", "trainStep(): the accumulation window has no micro-batches");
  const c10::Device device = model.params().device();
  const std::vector<double> weights = window_weights(model, window);
  at::Tensor total;
  for (size_t i = 0; i < window.size(); ++i) {
    if (weights[i] == 0.0) continue;
    at::Tensor loss;
    {
      AutocastScope mixed(device, autocast);
      loss = model.forward_loss(window[i].batch, window[i].labels.to(device)).to(at::kFloat);
    }
    if (weights[i] != 1.0) loss = loss * weights[i];
    (scaler != nullptr ? scaler->scaled(loss) : loss).backward();
    nn::densify_gradients(model.params().tensors());
    at::Tensor part = loss.detach();
    total = total.defined() ? total + part : part;
  }
  return total;
}

}  // namespace nodetune::train
