// One training step on a batch or an accumulation window: forward, the task's loss, backward, gradient clipping,
// AdamW step.
#pragma once
#include <ATen/ATen.h>
#include <torch/optim/optimizer.h>

#include <memory>

#include "dist/communicator.h"
#include "nn/model.h"
#include "train/accumulate.h"
#include "train/loss_scaler.h"

namespace nodetune::train {

struct OptimizerConfig {
  std::string type = "adamw";  // adamw | sgd
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;  // applied to parameters with 2+ dimensions only
  double momentum = 0.0;      // sgd
};

// An optimizer over the model's parameters that require gradients.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const nn::Params& params, const OptimizerConfig& config);
// An optimizer over those of `tensors` that require gradients (frozen ones get no state at all).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<at::Tensor>& tensors,
                                                        const OptimizerConfig& config);

struct StepResult {
  double loss = 0;       // with a communicator: the mean over the ranks
  double grad_norm = 0;  // total L2 norm of the (averaged) gradients, before clipping
  bool skipped = false;  // skip_non_finite: the loss or the gradient norm was NaN/Inf, no update was made
};

// One optimizer step on a window of micro-batches (one micro-batch: a plain step): forward and backward per
// micro-batch into the same gradients, each loss weighted so that loss and gradients are those of the window's
// concatenation (train/accumulate.h), then, once per window, the all-reduce, unscaling, clipping and the update.
// lr < 0 keeps the optimizer's current rate; max_grad_norm <= 0 skips clipping. With a communicator (data
// parallel), the gradients are averaged over the ranks between backward and the optimizer step, as DDP does.
// With an enabled loss scaler, the loss is scaled before backward and the gradients unscaled before clipping; a
// non-finite step is then always skipped (and the scale backed off).
StepResult train_step(nn::Model& model, torch::optim::Optimizer& optimizer, const std::vector<MicroBatch>& window,
                      double lr, double max_grad_norm, dist::Communicator* comm = nullptr, bool skip_non_finite = false,
                      c10::ScalarType autocast = c10::kFloat, LossScaler* scaler = nullptr);

}  // namespace nodetune::train
