// Where parameter-efficient methods (native/peft) attach to the model math without the architectures
// knowing about them: after every linear layer (LoRA), after each block's attention and MLP sublayers
// (bottleneck adapters), and before the first block (virtual tokens of prompt tuning).
#pragma once
#include <ATen/ATen.h>

#include <string>

namespace nodetune::nn {

class Hooks {
 public:
  virtual ~Hooks() = default;
  // `y` is the output of the linear layer `module` (its weight is "<module>.weight") for input `x`;
  // returns y plus whatever the active adapter adds.
  virtual at::Tensor linear(const std::string& module, const at::Tensor& x, const at::Tensor& y) const = 0;
  // Whether linear() would change the output of `module` (fused fast paths must not bypass an adapter).
  virtual bool adapts(const std::string& module) const = 0;
  // `h` is the output of the sublayer `site` ("<layer prefix>attention" or "<layer prefix>mlp") before
  // the residual connection.
  virtual at::Tensor sublayer(const std::string& site, const at::Tensor& h) const = 0;
  // Embeddings [n, hidden] to put before the token embeddings, or an undefined tensor.
  virtual at::Tensor prompt() const = 0;
};

}  // namespace nodetune::nn
