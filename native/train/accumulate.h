// Gradient accumulation: the forward and backward pass of each micro-batch of a window into the same gradients,
// each micro-batch's loss weighted so that the weighted sum is the loss of the window's concatenation. Only one
// micro-batch's activations are alive at a time.
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "nn/model.h"
#include "train/loss_scaler.h"

namespace nodetune::train {

struct MicroBatch {
  nn::Batch batch;    // on the model's device
  at::Tensor labels;  // anywhere (counted where they are, moved to the model's device for the loss)
};

// Adds the window's gradients to the parameters' .grad and returns the window's loss (a detached float32 scalar on
// the model's device; no host synchronisation beyond counting the labels). Micro-batch i's mean loss is weighted by
// n_i / N, n_i its loss terms (nn::Model::loss_terms: tokens that are not -100 after the causal shift, rows, ...)
// and N the window's, so loss and gradients are those of the concatenated batch. A micro-batch without terms
// contributes nothing and is not run; a window without any has the concatenated batch's NaN loss (its first
// micro-batch runs unweighted). A window of one runs unweighted, with nothing counted. Forward under `autocast`;
// the loss scaled before backward when `scaler` is enabled (the caller unscales the summed gradients).
at::Tensor accumulate_gradients(nn::Model& model, const std::vector<MicroBatch>& window, c10::ScalarType autocast,
                                const LossScaler* scaler);

}  // namespace nodetune::train
