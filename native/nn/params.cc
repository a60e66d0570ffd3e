#include "nn/params.h"

#include <ATen/core/grad_mode.h>

#include "core/error.h"
#include "nn/quantized_weight.h"

namespace nodetune::nn {

void Params::add(const std::string& name, std::vector<int64_t> shape, Init init) {
  if (map_.count(name)) fail("ERR_CONFIG", "parameter registered twice: " + name);
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype_).device(device_));
  t.set_requires_grad(true);
  names_.push_back(name);
  map_.emplace(name, t);
  init_.emplace(name, init);
}

void Params::adopt(const std::string& name, const at::Tensor& tensor) {
  if (map_.count(name)) fail("ERR_CONFIG", "parameter registered twice: " + name);
  names_.push_back(name);
  map_.emplace(name, tensor);
  init_.emplace(name, Init::kZeros);
}

void Params::clear() {
  names_.clear();
  map_.clear();
  init_.clear();
  quantized_.clear();
}

const QuantizedWeight* Params::quantized(const std::string& name) const {
  auto it = quantized_.find(name);
  return it == quantized_.end() ? nullptr : it->second.get();
}

std::shared_ptr<const QuantizedWeight> Params::quantized_ptr(const std::string& name) const {
  auto it = quantized_.find(name);
  return it == quantized_.end() ? nullptr : it->second;
}

void Params::set_quantized(const std::string& name, std::shared_ptr<const QuantizedWeight> weight) {
  const at::Tensor& current = get(name);
  std::vector<int64_t> shape = weight->transposed ? std::vector<int64_t>{weight->cols, weight->rows}
                                                  : std::vector<int64_t>{weight->rows, weight->cols};
  if (current.sizes().vec() != shape)
    fail("ERR_SHAPE", "quantized " + name + " is " + c10::str(at::IntArrayRef(shape)) + ", the parameter " + c10::str(current.sizes()));
  map_[name] = at::empty(shape, at::TensorOptions().dtype(dtype_).device(c10::kMeta));
  quantized_[name] = std::move(weight);
}

void Params::dequantize(const std::string& name) {
  auto it = quantized_.find(name);
  if (it == quantized_.end()) return;
  at::Tensor w = dequantize_weight(*it->second, dtype_).to(device_);
  map_[name] = w;
  quantized_.erase(it);
}

at::Tensor Params::values(const std::string& name) const {
  const QuantizedWeight* q = quantized(name);
  return q ? dequantize_weight(*q, dtype_) : get(name);
}

const at::Tensor& Params::get(const std::string& name) const {
  auto it = map_.find(name);
  if (it == map_.end()) fail("ERR_STATE", "no parameter named " + name);
  return it->second;
}

std::vector<at::Tensor> Params::tensors() const {
  std::vector<at::Tensor> out;
  out.reserve(names_.size());
  for (const auto& n : names_) out.push_back(map_.at(n));
  return out;
}

void Params::initialize(const std::string& name, double std) {
  at::NoGradGuard no_grad;
  if (const QuantizedWeight* q = quantized(name)) {
    // Initialised in float32 on the CPU, then quantized like a loaded weight.
    at::Tensor t = at::empty(get(name).sizes(), at::kFloat);
    if (init_.at(name) == Init::kNormal) t.normal_(0.0, std);
    else t.fill_(init_.at(name) == Init::kOnes ? 1.0 : 0.0);
    set_quantized(name, quantize_weight(t, q->format, q->transposed, device_));
    return;
  }
  at::Tensor t = get(name);
  switch (init_.at(name)) {
    case Init::kNormal: t.normal_(0.0, std); break;
    case Init::kZeros: t.zero_(); break;
    case Init::kOnes: t.fill_(1.0); break;
  }
}

}  // namespace nodetune::nn
