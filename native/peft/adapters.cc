#include "peft/adapters.h"

#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <cmath>

#include "core/autocast_state.h"
#include "core/error.h"
#include "nn/layers.h"
#include "nn/swiglu.h"

namespace nodetune::peft {
namespace {

// kaiming_uniform_(a = sqrt(5)) as nn.Linear and PEFT's lora_A use: bound = 1 / sqrt(fan_in).
void kaiming_uniform(at::Tensor t) {
  at::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(double(t.size(1)));
  t.uniform_(-bound, bound);
}

at::Tensor add_param(Adapter& a, const std::string& name, std::vector<int64_t> shape) {
  a.params.add(name, std::move(shape), nn::Init::kZeros);
  at::Tensor t = a.params.get(name);
  at::NoGradGuard no_grad;
  t.zero_();
  return t;
}

// y + low @ b^T, low being the r-wide product (scale applied), in y's dtype: one addmm where low has y's dtype
// (autocast's, or the model's own), which oneDNN sums as it writes the product (no [tokens, out] temporary, no add
// pass) and whose backward takes b's gradient as low^T @ grad (r rows wide: faster than grad^T @ low). At the 0.5B
// shape (bf16, 256 tokens) 174 against 247 us forward for a gate-sized layer, 50 against 66 for a q-sized one.
at::Tensor plus_lora_b(const at::Tensor& y, const at::Tensor& low, const at::Tensor& b) {
  if (low.scalar_type() != y.scalar_type() || y.dim() < 2)
    return y + at::linear(low, b).to(y.scalar_type());
  at::Tensor out = at::addmm(y.reshape({-1, y.size(-1)}), low.reshape({-1, low.size(-1)}), b.to(y.scalar_type()).t());
  return out.view(y.sizes());
}

// The layer's own product added in place into the adapter's part, low @ b^T, made first: one pass over the
// [rows, out] output where plus_lora_b makes two (the product writes it, then the addmm reads and writes it again),
// and one rounding of the sum. At the 0.5B shape's gate/up (bf16, 256 tokens, a distinct weight per layer, LibTorch
// 1.13's oneDNN on the AMX Xeon, 2 threads): 1.93 against 3.27 ms for a layer with its adapter, the product alone 1.65.
// Where the layer cannot take it (see Hooks::OwnOutput), or low is in another dtype than x, plus_lora_b.
at::Tensor lora_b_then_own(size_t i, const at::Tensor& x, const at::Tensor& low, const at::Tensor& b,
                           const nn::Hooks::OwnOutput& own) {
  if (low.scalar_type() == x.scalar_type() && x.dim() >= 2) {
    at::Tensor side = at::mm(low.reshape({-1, low.size(-1)}), b.to(low.scalar_type()).t());
    at::Tensor y = own(i, side);
    if (y.defined()) {
      auto sizes = x.sizes().vec();
      sizes.back() = side.size(1);
      return y.view(sizes);
    }
  }
  return plus_lora_b(own(i, at::Tensor()), low, b);
}

// An activation for a product with an adapter weight: cast to the weight's dtype (a float32 adapter over a
// bfloat16 base) unless autocast is on, which casts both operands itself.
at::Tensor in_dtype(const at::Tensor& x, const at::Tensor& w) {
  if (x.scalar_type() == w.scalar_type() || any_autocast()) return x;
  return x.to(w.scalar_type());
}

}  // namespace

Adapter& AdapterSet::create(const std::string& name, Kind kind, const nn::Params& base) {
  if (name.empty()) fail("ERR_ARGUMENT", "an adapter name must not be empty");
  if (adapters_.count(name)) fail("ERR_STATE", "an adapter named '" + name + "' exists already");
  // Trainable weights in float32 over a bfloat16/float16 base (PEFT's autocast_adapter_dtype): AdamW's updates
  // and state need float32, and they are a small share of the model.
  const bool reduced = base.dtype() == at::kBFloat16 || base.dtype() == at::kHalf;
  auto a = std::make_unique<Adapter>(kind, reduced ? at::kFloat : base.dtype(), base.device());
  Adapter& ref = *a;
  adapters_.emplace(name, std::move(a));
  if (default_.empty()) default_ = name;  // the first adapter becomes the active one (as PEFT)
  return ref;
}

Adapter& AdapterSet::add_lora(const std::string& name, const nn::Params& base, int64_t r, double scale,
                              double dropout, const std::vector<LoraTarget>& targets) {
  if (r <= 0) fail("ERR_ARGUMENT", "LoRA rank r must be positive");
  if (targets.empty()) fail("ERR_ARGUMENT", "LoRA needs at least one target module");
  for (const auto& t : targets) {
    const at::Tensor& w = base.get(t.module + ".weight");
    const int64_t in = t.fan_in_fan_out ? w.size(0) : w.size(1), out = t.fan_in_fan_out ? w.size(1) : w.size(0);
    if (w.dim() != 2 || in != t.in_features || out != t.out_features)
      fail("ERR_SHAPE", "LoRA target " + t.module + " is not a [" + std::to_string(t.out_features) + ", " +
                            std::to_string(t.in_features) + "] linear layer");
  }
  Adapter& a = create(name, Kind::kLora, base);
  try {
    a.scale = scale;
    a.dropout = dropout;
    for (const auto& t : targets) {
      kaiming_uniform(add_param(a, t.module + ".lora_A.weight", {r, t.in_features}));
      add_param(a, t.module + ".lora_B.weight", {t.out_features, r});
      a.targets.emplace(t.module, t);
    }
  } catch (...) {
    adapters_.erase(name);
    if (default_ == name) default_.clear();
    throw;
  }
  sync_trainable();
  restore();
  return a;
}

Adapter& AdapterSet::add_bottleneck(const std::string& name, const nn::Params& base, int64_t hidden, int64_t size,
                                    const std::string& act, const std::vector<std::string>& sites) {
  if (size <= 0 || hidden <= 0) fail("ERR_ARGUMENT", "bottleneck size must be positive");
  if (sites.empty()) fail("ERR_ARGUMENT", "a bottleneck adapter needs at least one site");
  nn::activation(act, at::zeros({1}));  // ERR_CONFIG for an unknown activation, before anything is created
  Adapter& a = create(name, Kind::kBottleneck, base);
  a.act = act;
  for (const auto& s : sites) {
    kaiming_uniform(add_param(a, s + ".adapter_down.weight", {size, hidden}));
    add_param(a, s + ".adapter_down.bias", {size});
    add_param(a, s + ".adapter_up.weight", {hidden, size});
    add_param(a, s + ".adapter_up.bias", {hidden});
    a.sites.emplace(s, true);
  }
  sync_trainable();
  restore();
  return a;
}

Adapter& AdapterSet::add_prompt(const std::string& name, const nn::Params& base, const at::Tensor& embedding,
                                int64_t n, const std::vector<int64_t>& ids) {
  if (n <= 0) fail("ERR_ARGUMENT", "numVirtualTokens must be positive");
  if (!ids.empty() && int64_t(ids.size()) != n) fail("ERR_ARGUMENT", "prompt init ids must number numVirtualTokens");
  Adapter& a = create(name, Kind::kPrompt, base);
  at::Tensor t = add_param(a, "prompt_embeddings", {n, embedding.size(1)});
  at::NoGradGuard no_grad;
  if (ids.empty()) {
    t.normal_(0.0, 1.0);  // torch.nn.Embedding's default init, as PEFT's random init
  } else {
    at::Tensor idx = at::tensor(ids, at::TensorOptions().dtype(at::kLong)).to(embedding.device());
    t.copy_(embedding.detach().index_select(0, idx));
  }
  sync_trainable();
  restore();
  return a;
}

void AdapterSet::remove(const std::string& name) {
  Adapter& a = get(name);
  if (a.merged) fail("ERR_STATE", "adapter '" + name + "' is merged; unmergeAdapter() first");
  if (default_ == name) default_.clear();
  active_ = nullptr;
  adapters_.erase(name);
  sync_trainable();
  restore();
}

Adapter& AdapterSet::get(const std::string& name) {
  auto it = adapters_.find(name);
  if (it == adapters_.end()) fail("ERR_STATE", "no adapter named '" + name + "'");
  return *it->second;
}

std::vector<std::string> AdapterSet::names() const {
  std::vector<std::string> out;
  for (const auto& [n, a] : adapters_) out.push_back(n);
  return out;
}

std::vector<at::Tensor> AdapterSet::tensors() const {
  std::vector<at::Tensor> out;
  for (const auto& [n, a] : adapters_)
    for (const auto& t : a->params.tensors()) out.push_back(t);
  return out;
}

std::string AdapterSet::merged_name() const {
  for (const auto& [n, a] : adapters_)
    if (a->merged) return n;
  return "";
}

void AdapterSet::set_default(const std::string& name) {
  select(name);
  default_ = name;
  sync_trainable();
}

void AdapterSet::sync_trainable() {
  for (const auto& [n, a] : adapters_)
    for (auto t : a->params.tensors()) t.set_requires_grad(n == default_);
}

void AdapterSet::select(const std::string& name) {
  if (name.empty()) {
    active_ = nullptr;
    return;
  }
  Adapter& a = get(name);
  const std::string merged = merged_name();
  if (!merged.empty() && merged != name)
    fail("ERR_STATE", "adapter '" + merged + "' is merged into the base weights; unmergeAdapter() before using '" + name + "'");
  active_ = &a;
}

void AdapterSet::restore() noexcept {
  auto it = adapters_.find(default_);
  active_ = it == adapters_.end() ? nullptr : it->second.get();
}

void AdapterSet::merge(const std::string& name, nn::Params& base) {
  Adapter& a = get(name);
  if (a.kind != Kind::kLora) fail("ERR_STATE", "only LoRA adapters can be merged ('" + name + "' is not LoRA)");
  const std::string merged = merged_name();
  if (merged == name) fail("ERR_STATE", "adapter '" + name + "' is merged already");
  if (!merged.empty()) fail("ERR_STATE", "adapter '" + merged + "' is merged; unmergeAdapter() first");
  at::NoGradGuard no_grad;
  // A quantized base weight cannot take the update: it goes back to the model's dtype first (and stays so).
  for (const auto& [module, t] : a.targets) base.dequantize(module + ".weight");
  for (const auto& [module, t] : a.targets) {
    at::Tensor delta = at::matmul(a.params.get(module + ".lora_B.weight").to(at::kFloat),
                                  a.params.get(module + ".lora_A.weight").to(at::kFloat)) * a.scale;
    at::Tensor w = base.get(module + ".weight");
    w.copy_((w.to(at::kFloat) + (t.fan_in_fan_out ? delta.t() : delta)).to(w.scalar_type()));
  }
  a.merged = true;
}

void AdapterSet::unmerge(nn::Params& base) {
  const std::string name = merged_name();
  if (name.empty()) fail("ERR_STATE", "unmergeAdapter(): no adapter is merged");
  Adapter& a = get(name);
  at::NoGradGuard no_grad;
  for (const auto& [module, t] : a.targets) {
    at::Tensor delta = at::matmul(a.params.get(module + ".lora_B.weight").to(at::kFloat),
                                  a.params.get(module + ".lora_A.weight").to(at::kFloat)) * a.scale;
    at::Tensor w = base.get(module + ".weight");
    w.copy_((w.to(at::kFloat) - (t.fan_in_fan_out ? delta.t() : delta)).to(w.scalar_type()));
  }
  a.merged = false;
}

bool AdapterSet::adapts(const std::string& module) const {
  return active_ && active_->kind == Kind::kLora && !active_->merged && active_->targets.count(module) > 0;
}

at::Tensor AdapterSet::linear(const std::string& module, const at::Tensor& x, const at::Tensor& y) const {
  if (!active_ || active_->kind != Kind::kLora || active_->merged) return y;
  auto it = active_->targets.find(module);
  if (it == active_->targets.end()) return y;
  const bool train = training_ && *training_;
  const at::Tensor& a = active_->params.get(module + ".lora_A.weight");
  at::Tensor in = active_->dropout > 0 ? at::dropout(x, active_->dropout, train) : x;
  // The scale on the r-wide side ([.., r]) rather than on the output ([.., out]): one pass over r columns forward
  // and backward instead of two over the layer's width (r 16 against 4864 at the 0.5B shape's gate/up).
  return plus_lora_b(y, at::linear(in_dtype(in, a), a) * active_->scale, active_->params.get(module + ".lora_B.weight"));
}

at::Tensor AdapterSet::swiglu_linear(const std::string& module, const at::Tensor& gate, const at::Tensor& up,
                                     const std::function<at::Tensor(const at::Tensor&)>& base) const {
  // Only where linear() would apply LoRA with no dropout on its input (dropout's mask is drawn from that input).
  if (!adapts(module) || (active_->dropout > 0 && training_ && *training_)) return at::Tensor();
  const at::Tensor& a = active_->params.get(module + ".lora_A.weight");
  // In A's dtype as linear() computes it: the input's when they agree or under autocast (which casts A to it).
  const c10::DeviceType type = gate.device().type();
  if (a.scalar_type() != gate.scalar_type() && !(autocast_enabled(type) && autocast_dtype(type) == gate.scalar_type()))
    return at::Tensor();
  // The cast is part of the graph (its backward casts A's gradient back), as autocast's would be.
  auto [f, low] = nn::swiglu_with_product(gate, up, a.scalar_type() == gate.scalar_type() ? a : a.to(gate.scalar_type()));
  if (!f.defined()) return at::Tensor();
  return plus_lora_b(base(f), low * active_->scale, active_->params.get(module + ".lora_B.weight"));
}

std::vector<at::Tensor> AdapterSet::linear_group(const std::vector<std::string>& modules, const at::Tensor& x,
                                                  const std::vector<at::Tensor>& outputs, const OwnOutput& own) const {
  // Each layer's dropout draws its own mask on x: then one input per layer, as linear() does.
  if (modules.size() < 2 || !active_ || (active_->dropout > 0 && training_ && *training_)) return {};
  std::vector<at::Tensor> as, bs;
  for (const auto& m : modules) {
    if (!adapts(m)) return {};
    as.push_back(active_->params.get(m + ".lora_A.weight"));
    bs.push_back(active_->params.get(m + ".lora_B.weight"));
  }
  // The layers' A stacked [k r, in]: one product over x forward, and in backward one for x's gradient (where linear()
  // per layer makes k and sums them) and one for the A's. Each layer's B then adds to its own output, or its own
  // output is added to B's part where the outputs are still to be made.
  at::Tensor a = at::cat(as, 0);
  at::Tensor low = at::linear(in_dtype(x, a), a) * active_->scale;
  std::vector<at::Tensor> ys(modules.size()), lows = low.split(as[0].size(0), -1);
  for (size_t i = 0; i < ys.size(); ++i)
    ys[i] = outputs.empty() ? lora_b_then_own(i, x, lows[i], bs[i], own) : plus_lora_b(outputs[i], lows[i], bs[i]);
  return ys;
}

at::Tensor AdapterSet::sublayer(const std::string& site, const at::Tensor& h) const {
  if (!active_ || active_->kind != Kind::kBottleneck || !active_->sites.count(site)) return h;
  const auto& p = active_->params;
  const at::Tensor& w = p.get(site + ".adapter_down.weight");
  at::Tensor down = at::linear(in_dtype(h, w), w, p.get(site + ".adapter_down.bias"));
  return h + at::linear(nn::activation(active_->act, down), p.get(site + ".adapter_up.weight"),
                        p.get(site + ".adapter_up.bias")).to(h.scalar_type());
}

at::Tensor AdapterSet::prompt() const {
  if (!active_ || active_->kind != Kind::kPrompt) return {};
  return active_->params.get("prompt_embeddings");
}

}  // namespace nodetune::peft
