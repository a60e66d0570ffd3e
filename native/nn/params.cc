#include "nn/params.h"

#include <ATen/core/grad_mode.h>

#include "core/error.h"

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
  at::Tensor t = get(name);
  switch (init_.at(name)) {
    case Init::kNormal: t.normal_(0.0, std); break;
    case Init::kZeros: t.zero_(); break;
    case Init::kOnes: t.fill_(1.0); break;
  }
}

}  // namespace nodetune::nn
