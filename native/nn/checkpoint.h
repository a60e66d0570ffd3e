// Activation (gradient) checkpointing: a block runs without keeping its intermediate activations; backward
// recomputes them from the block's input (with the random state of the first run, so dropout masks repeat) and
// back-propagates through the recomputation. Memory for activations drops to one tensor per block, at the cost
// of a second forward pass.
#pragma once
#include <ATen/ATen.h>

#include <functional>

namespace nodetune::nn {

using Block = std::function<at::Tensor(const at::Tensor&)>;

// `block` must capture what it uses by value (it runs again during backward, after the caller returned).
at::Tensor checkpointed(Block block, const at::Tensor& input);

}  // namespace nodetune::nn
