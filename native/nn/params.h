// A model's parameters, in registration order, under their Hugging Face checkpoint names
// ("model.layers.0.self_attn.q_proj.weight"), so the names are the checkpoint keys with no mapping.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "nn/hooks.h"

namespace nodetune::nn {

struct QuantizedWeight;  // nn/quantized_weight.h

enum class Init { kNormal, kZeros, kOnes };

class Params {
 public:
  Params(c10::ScalarType dtype, c10::Device device) : dtype_(dtype), device_(device) {}

  // Registers an uninitialised parameter (storage allocated, values set by initialize() or a load).
  void add(const std::string& name, std::vector<int64_t> shape, Init init);
  // Storage for several parameters registered as views of its rows (add_view): q/k/v, gate/up in one allocation,
  // so products over all of them can use them together without copying (rows_view()).
  at::Tensor block(std::vector<int64_t> shape) const;
  void add_view(const std::string& name, const at::Tensor& view, Init init);
  // The parameters `tensors` as one [sum of rows, ...] tensor without a copy, when they still lie in order in one
  // storage (block + add_view) and none requires a gradient (a frozen base, or any base under no-grad mode:
  // generation); undefined otherwise.
  at::Tensor rows_view(const std::vector<at::Tensor>& tensors) const;
  const at::Tensor& get(const std::string& name) const;
  bool has(const std::string& name) const { return map_.count(name) > 0; }
  const std::vector<std::string>& names() const { return names_; }
  std::vector<at::Tensor> tensors() const;

  // Registers an existing tensor under `name` (shares its storage): views over other tables for I/O.
  void adopt(const std::string& name, const at::Tensor& tensor);
  // Removes every parameter.
  void clear();

  // Frozen linear weights kept quantized (nn/quantized_weight.h). Such a parameter's tensor is a placeholder on
  // the meta device (its shape and dtype, no storage): linear layers read the quantized weight instead, and
  // whatever needs values (saving, getParameter, merging) dequantizes it.
  const QuantizedWeight* quantized(const std::string& name) const;
  std::shared_ptr<const QuantizedWeight> quantized_ptr(const std::string& name) const;
  void set_quantized(const std::string& name, std::shared_ptr<const QuantizedWeight> weight);
  // A quantized weight that is no parameter of its own: the LM head's quantized copy of tied embeddings.
  void set_quantized_extra(const std::string& name, std::shared_ptr<const QuantizedWeight> weight) {
    quantized_[name] = std::move(weight);
  }
  // Puts the dequantized values back as an ordinary (frozen) parameter in dtype().
  void dequantize(const std::string& name);
  bool any_quantized() const { return !quantized_.empty(); }
  // The parameter's values: a dequantized copy for a quantized one, else the tensor itself.
  at::Tensor values(const std::string& name) const;

  // Adapters attached to the forward pass (not owned; nullptr: none).
  const Hooks* hooks() const { return hooks_; }
  void set_hooks(const Hooks* hooks) { hooks_ = hooks; }

  // Sets one parameter to its initial value (normal(0, std), zeros or ones), like transformers' _init_weights.
  void initialize(const std::string& name, double std);

  c10::ScalarType dtype() const { return dtype_; }
  c10::Device device() const { return device_; }

 private:
  c10::ScalarType dtype_;
  c10::Device device_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, at::Tensor> map_;
  std::unordered_map<std::string, Init> init_;
  std::unordered_map<std::string, std::shared_ptr<const QuantizedWeight>> quantized_;
  const Hooks* hooks_ = nullptr;
};

}  // namespace nodetune::nn
