// The optimizer's state (AdamW moments and step counts, SGD momentum buffers) to a file and back, for
// checkpoints that resume exactly. LibTorch's own serialisation, plus the parameter shapes, which are
// checked on load so a state cannot land on another model or another set of trainable parameters.
#pragma once
#include <torch/optim/optimizer.h>

#include <string>

namespace nodetune::train {

void save_optimizer_state(const torch::optim::Optimizer& optimizer, const std::string& file);
// ERR_CHECKPOINT for an unreadable file; ERR_STATE when the parameters do not match.
void load_optimizer_state(torch::optim::Optimizer& optimizer, const std::string& file);

}  // namespace nodetune::train
