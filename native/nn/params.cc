#include "nn/params.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>

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

at::Tensor Params::block(std::vector<int64_t> shape) const {
  return at::empty(shape, at::TensorOptions().dtype(dtype_).device(device_));
}

void Params::add_view(const std::string& name, const at::Tensor& view, Init init) {
  if (map_.count(name)) fail("ERR_CONFIG", "parameter registered twice: " + name);
  at::Tensor t = view;  // a leaf: the block needs no gradient
  t.set_requires_grad(true);
  names_.push_back(name);
  map_.emplace(name, t);
  init_.emplace(name, init);
}

at::Tensor Params::rows_view(const std::vector<at::Tensor>& tensors) const {
  if (tensors.empty()) return {};
  const at::Tensor& first = tensors.front();
  int64_t rows = 0, next = first.storage_offset();
  for (const auto& t : tensors) {
    if ((t.requires_grad() && at::GradMode::is_enabled()) || !t.is_contiguous() || t.dim() != first.dim() || t.scalar_type() != first.scalar_type() ||
        !t.storage().is_alias_of(first.storage()) || t.storage_offset() != next ||
        t.sizes().slice(1) != first.sizes().slice(1))
      return {};
    next += t.numel();
    rows += t.size(0);
  }
  std::vector<int64_t> shape = first.sizes().vec();
  shape[0] = rows;
  return first.as_strided(shape, first.strides());
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

namespace {

// normal(0, std) into a bfloat16/float16 tensor. LibTorch's CPU normal_ is vectorised for float32 only; in other
// dtypes it draws element by element (a Qwen2.5-0.5B-shaped fromConfig took 21 s in bfloat16 against 5.7 s in
// float32). So the values are drawn in float32, a chunk at a time (bounded memory: no float32 copy of the
// model), and rounded in. Chunks are multiples of 16 elements, the float32 kernel's block, so the draws are
// those of one float32 normal_ over the whole tensor: a reduced-precision model gets its float32 twin's weights,
// rounded.
void normal_reduced(at::Tensor& t, double std) {
  const int64_t chunk = int64_t(1) << 22;  // 16 MB of float32
  at::Tensor flat = t.view({-1});
  const int64_t n = flat.numel();
  // The last chunk takes a remainder under 16 with it: alone it would be drawn by the scalar kernel.
  at::Tensor buffer = at::empty({std::min(chunk + 16, n)}, t.options().dtype(at::kFloat));
  for (int64_t start = 0, len = 0; start < n; start += len) {
    len = n - start < chunk + 16 ? n - start : chunk;
    at::Tensor part = buffer.narrow(0, 0, len);
    part.normal_(0.0, std);
    flat.narrow(0, start, len).copy_(part);
  }
}

}  // namespace

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
  const bool reduced = t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf;
  switch (init_.at(name)) {
    case Init::kNormal:
      if (reduced && t.device().is_cpu() && t.is_contiguous()) normal_reduced(t, std);
      else t.normal_(0.0, std);
      break;
    case Init::kZeros: t.zero_(); break;
    case Init::kOnes: t.fill_(1.0); break;
  }
}

}  // namespace nodetune::nn
