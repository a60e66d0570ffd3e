// Named adapters on one base model (LoRA, bottleneck adapters, prompt tuning), at most one active per
// call. The set is the model's nn::Hooks: the architectures call it after linear layers and sublayers,
// and it adds the active adapter's contribution. Each adapter keeps its own parameter table, named by
// the base module paths ("model.layers.0.self_attn.q_proj.lora_A.weight").
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "nn/hooks.h"
#include "nn/params.h"

namespace nodetune::peft {

enum class Kind { kLora, kBottleneck, kPrompt };

struct LoraTarget {
  std::string module;      // base linear layer; its weight is "<module>.weight"
  int64_t in_features = 0;
  int64_t out_features = 0;
  bool fan_in_fan_out = false;  // GPT-2 Conv1D: the base weight is [in, out]
};

struct Adapter {
  Adapter(Kind k, c10::ScalarType dtype, c10::Device device) : kind(k), params(dtype, device) {}
  Kind kind;
  nn::Params params;
  // LoRA
  double scale = 1.0;
  double dropout = 0.0;
  std::unordered_map<std::string, LoraTarget> targets;
  bool merged = false;
  // bottleneck
  std::unordered_map<std::string, bool> sites;
  std::string act = "relu";
};

class AdapterSet : public nn::Hooks {
 public:
  // `training` is read at every call (dropout only while training).
  explicit AdapterSet(const bool* training) : training_(training) {}

  // r, scale (alpha / r or alpha / sqrt(r)); A kaiming-uniform (bound 1/sqrt(in)), B zero.
  Adapter& add_lora(const std::string& name, const nn::Params& base, int64_t r, double scale, double dropout,
                    const std::vector<LoraTarget>& targets);
  // One adapter per site: down [size, hidden] (kaiming-uniform), activation, up [hidden, size] zero.
  Adapter& add_bottleneck(const std::string& name, const nn::Params& base, int64_t hidden, int64_t size,
                          const std::string& act, const std::vector<std::string>& sites);
  // prompt_embeddings [n, hidden]: rows of `embedding` for `ids`, or normal(0, 1) when ids is empty.
  Adapter& add_prompt(const std::string& name, const nn::Params& base, const at::Tensor& embedding,
                      int64_t n, const std::vector<int64_t>& ids);
  void remove(const std::string& name);

  bool has(const std::string& name) const { return adapters_.count(name) > 0; }
  Adapter& get(const std::string& name);
  std::vector<std::string> names() const;
  // Every adapter parameter (for the optimizer).
  std::vector<at::Tensor> tensors() const;

  // The adapter used when a call names none ("" = none).
  void set_default(const std::string& name);
  // Only the default adapter's parameters require gradients (the others are kept, frozen).
  void sync_trainable();
  const std::string& default_name() const { return default_; }
  // Makes `name` active for one call ("" = none); a merged adapter is part of the base weights, so
  // another adapter cannot be active while one is merged.
  void select(const std::string& name);
  // Back to the default (never throws).
  void restore() noexcept;

  // W += scale * B A (transposed for fan_in_fan_out); unmerge subtracts it again.
  void merge(const std::string& name, nn::Params& base);
  void unmerge(nn::Params& base);
  std::string merged_name() const;

  at::Tensor linear(const std::string& module, const at::Tensor& x, const at::Tensor& y) const override;
  at::Tensor swiglu_linear(const std::string& module, const at::Tensor& gate, const at::Tensor& up,
                           const std::function<at::Tensor(const at::Tensor&)>& base) const override;
  std::vector<at::Tensor> linear_group(const std::vector<std::string>& modules, const at::Tensor& x,
                                       const std::vector<at::Tensor>& outputs, const OwnOutput& own) const override;
  bool adapts(const std::string& module) const override;
  at::Tensor sublayer(const std::string& site, const at::Tensor& h) const override;
  at::Tensor prompt() const override;

 private:
  Adapter& create(const std::string& name, Kind kind, const nn::Params& base);

  const bool* training_;
  std::map<std::string, std::unique_ptr<Adapter>> adapters_;
  std::string default_;
  const Adapter* active_ = nullptr;
};

// RAII: selects an adapter for one call and restores the default afterwards.
class Selection {
 public:
  Selection(AdapterSet& set, const std::string& name) : set_(set) { set_.select(name); }
  ~Selection() { set_.restore(); }

 private:
  AdapterSet& set_;
};

}  // namespace nodetune::peft
