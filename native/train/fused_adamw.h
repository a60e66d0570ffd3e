// AdamW in one pass over memory for float32 CPU parameters: the same update as torch::optim::AdamW::step()
// (decoupled weight decay, bias-corrected moments, eps added after the square root), kept in the optimizer's
// own per-parameter state so saving, loading and resuming are unchanged. LibTorch's step() runs six separate
// elementwise kernels per parameter (plus a temporary for the denominator); this reads the parameter, its
// gradient and both moments once and writes them once.
#pragma once
#include <torch/optim/adamw.h>

namespace nodetune::train {

// Applies one AdamW step when every parameter with a gradient is a contiguous float32 CPU tensor and
// amsgrad is off; returns false (and changes nothing) otherwise, so the caller falls back to step().
bool fused_adamw_step(torch::optim::AdamW& optimizer);

// Drops every gradient (PyTorch's zero_grad(set_to_none=True)): the next backward writes fresh gradients
// instead of adding into zeroed ones, and their memory is free between steps.
void clear_gradients(torch::optim::Optimizer& optimizer);

}  // namespace nodetune::train
