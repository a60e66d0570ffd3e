// Where parameter-efficient methods (native/peft) attach to the model math without the architectures
// knowing about them: after every linear layer (LoRA), after each block's attention and MLP sublayers
// (bottleneck adapters), and before the first block (virtual tokens of prompt tuning).
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

namespace nodetune::nn {

class Hooks {
 public:
  virtual ~Hooks() = default;
  // `y` is the output of the linear layer `module` (its weight is "<module>.weight") for input `x`;
  // returns y plus whatever the active adapter adds.
  virtual at::Tensor linear(const std::string& module, const at::Tensor& x, const at::Tensor& y) const = 0;
  // linear() for the input x = swiglu(gate, up) (a gated MLP's down projection), `base` giving the layer's own output
  // for x: an adapter that would keep x for backward may build x itself and keep gate and up instead (SwiGLU keeps
  // them anyway). Returns the output, or an undefined tensor to have the caller compute x and call linear().
  virtual at::Tensor swiglu_linear(const std::string& module, const at::Tensor& gate, const at::Tensor& up,
                                   const std::function<at::Tensor(const at::Tensor&)>& base) const {
    return at::Tensor();
  }
  // Layer i's own output for the group's input: with `into` undefined a new tensor (x's shape, the layer's outputs
  // last); with `into` ([rows, out] in x's dtype) the product added into it in place and `into` returned, or an
  // undefined tensor where the layer cannot (a bias, a quantized weight, another dtype).
  using OwnOutput = std::function<at::Tensor(size_t i, const at::Tensor& into)>;
  // linear() for several layers on one input x (nn/layers.cc fused_linear), `outputs` being their own outputs in
  // `modules`' order, or empty with `own` to make them (then an adapter may make its own part first and have the
  // layer's product added into it): all of them adapted in one go (one product per side for all the layers), or
  // nothing to have the caller call linear() per layer.
  virtual std::vector<at::Tensor> linear_group(const std::vector<std::string>& modules, const at::Tensor& x,
                                               const std::vector<at::Tensor>& outputs, const OwnOutput& own) const {
    return {};
  }
  // Whether linear() would change the output of `module` (fused fast paths must not bypass an adapter).
  virtual bool adapts(const std::string& module) const = 0;
  // `h` is the output of the sublayer `site` ("<layer prefix>attention" or "<layer prefix>mlp") before
  // the residual connection.
  virtual at::Tensor sublayer(const std::string& site, const at::Tensor& h) const = 0;
  // Embeddings [n, hidden] to put before the token embeddings, or an undefined tensor.
  virtual at::Tensor prompt() const = 0;
};

}  // namespace nodetune::nn
