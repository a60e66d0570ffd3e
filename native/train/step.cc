#include "train/step.h"

#include <cmath>

#include <torch/types.h>  // clip_grad.h uses torch:: functions without including them
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include "core/block_cache.h"
#include "core/error.h"
#include "train/fused_adamw.h"

namespace nodetune::train {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const nn::Params& params, const OptimizerConfig& c) {
  return make_optimizer(params.tensors(), c);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<at::Tensor>& tensors, const OptimizerConfig& c) {
  std::vector<at::Tensor> decay, no_decay;
  for (const auto& t : tensors) {
    if (!t.requires_grad()) continue;
    (t.dim() >= 2 ? decay : no_decay).push_back(t);
  }
  if (decay.empty() && no_decay.empty()) fail("ERR_STATE", "configureOptimizer(): no trainable parameters");
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (c.type == "adamw") {
    auto opts = [&](double wd) {
      auto o = std::make_unique<torch::optim::AdamWOptions>(c.lr);
      o->betas({c.beta1, c.beta2}).eps(c.eps).weight_decay(wd);
      return o;
    };
    if (!decay.empty()) groups.emplace_back(decay, opts(c.weight_decay));
    if (!no_decay.empty()) groups.emplace_back(no_decay, opts(0.0));
    return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(c.lr));
  }
  if (c.type == "sgd") {
    auto opts = [&](double wd) {
      auto o = std::make_unique<torch::optim::SGDOptions>(c.lr);
      o->momentum(c.momentum).weight_decay(wd);
      return o;
    };
    if (!decay.empty()) groups.emplace_back(decay, opts(c.weight_decay));
    if (!no_decay.empty()) groups.emplace_back(no_decay, opts(0.0));
    return std::make_unique<torch::optim::SGD>(groups, torch::optim::SGDOptions(c.lr));
  }
  fail("ERR_ARGUMENT", "unknown optimizer type " + c.type);
}

StepResult train_step(nn::Model& model, torch::optim::Optimizer& optimizer, const std::vector<MicroBatch>& window,
                      double lr, double max_grad_norm, dist::Communicator* comm, bool skip_non_finite,
                      c10::ScalarType autocast, LossScaler* scaler) {
  if (lr >= 0) {
    for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
  }
  model.training = true;
  StepResult result;
  try {
    // The gradients are freed as each step starts and made again in backward, while the forward's blocks
    // (activations; autocast's bfloat16 copies of the weights, half the gradients' bytes) have other sizes: with
    // idle memory of half the gradients' bytes allowed, the block cache keeps both sets instead of unmapping the
    // gradients' blocks during the forward and page-faulting them in again in backward (0.9 s of a 0.5B full bf16
    // step, measured; the process keeps about 1 GB more). LoRA's gradients are small: its slack stays as set.
    size_t grad_bytes = 0;
    for (auto& group : optimizer.param_groups())
      for (auto& p : group.params())
        if (p.device().is_cpu()) grad_bytes += size_t(p.numel()) * p.element_size();
    set_block_cache_slack_floor(grad_bytes / 2);
    clear_gradients(optimizer);
    const bool scaling = scaler != nullptr && scaler->enabled;
    at::Tensor loss = accumulate_gradients(model, window, autocast, scaler);
    std::vector<at::Tensor> with_grad, grads;
    for (auto& group : optimizer.param_groups())
      for (auto& p : group.params())
        if (p.grad().defined()) with_grad.push_back(p), grads.push_back(p.mutable_grad());
    at::Tensor reported = loss.reshape({1});
    if (comm != nullptr && comm->world_size() > 1) {
      // Once per window. The loss travels in the same collective as the gradients (the reported loss is the
      // group's mean).
      std::vector<at::Tensor> reduced = grads;
      reduced.push_back(reported);
      comm->all_reduce(reduced, /*average=*/true);
    }
    if (scaling) scaler->unscale(grads);
    if (max_grad_norm > 0) {
      result.grad_norm = torch::nn::utils::clip_grad_norm_(with_grad, max_grad_norm);
    } else if (!with_grad.empty()) {
      std::vector<at::Tensor> norms;
      for (auto& p : with_grad) norms.push_back(p.grad().detach().to(at::kFloat).norm());
      result.grad_norm = at::stack(norms).norm().item<double>();
    }
    result.loss = reported.item<double>();
    const bool finite = std::isfinite(result.loss) && std::isfinite(result.grad_norm);
    if (!finite && (skip_non_finite || scaling)) {
      // Every rank sees the same averaged loss and norm, so every rank skips the same step.
      result.skipped = true;
    } else {
      auto* adamw = dynamic_cast<torch::optim::AdamW*>(&optimizer);
      if (adamw == nullptr || !fused_adamw_step(*adamw)) optimizer.step();
    }
    clear_gradients(optimizer);
    if (scaling) scaler->update(finite);
  } catch (...) {
    model.training = false;
    clear_gradients(optimizer);
    throw;
  }
  model.training = false;
  return result;
}

}  // namespace nodetune::train
