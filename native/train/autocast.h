// Mixed precision for a training step: LibTorch's autocast (matrix products and friends in bfloat16, reductions
// and the loss in float32) while the parameters, gradients and optimizer state stay float32 ("master weights").
// Autocast state is per thread; the scope restores what it found.
#pragma once
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace nodetune::train {

class AutocastScope {
 public:
  // kFloat: no autocast. kBFloat16 on CPU or CUDA; kHalf on CUDA only (it needs loss scaling, see the caller).
  AutocastScope(const c10::Device& device, c10::ScalarType dtype);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool previous_enabled_ = false;
  c10::ScalarType previous_dtype_ = c10::kFloat;
};

// 'fp32' | 'bf16' | 'fp16' -> the autocast dtype (ERR_ARGUMENT otherwise). fp16 needs a CUDA device and loss scaling.
c10::ScalarType parse_precision(const std::string& name);

}  // namespace nodetune::train
