#include "train/autocast.h"

#include <ATen/autocast_mode.h>

#include <string>

#include "core/autocast_state.h"
#include "core/error.h"

namespace nodetune::train {

AutocastScope::AutocastScope(const c10::Device& device, c10::ScalarType dtype) {
  if (dtype == c10::kFloat) return;
  cuda_ = device.is_cuda();
  if (!cuda_ && dtype != c10::kBFloat16)
    fail("ERR_DEVICE", "mixed precision on the CPU is bfloat16 only ('bf16'); float16 autocast needs a CUDA device");
  const c10::DeviceType type = cuda_ ? c10::kCUDA : c10::kCPU;
  previous_enabled_ = autocast_enabled(type);
  previous_dtype_ = autocast_dtype(type);
  set_autocast(type, true, dtype);
  at::autocast::increment_nesting();
  active_ = true;
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(cuda_ ? c10::kCUDA : c10::kCPU, previous_enabled_, previous_dtype_);
}

c10::ScalarType parse_precision(const std::string& name) {
  if (name == "fp32") return c10::kFloat;
  if (name == "bf16") return c10::kBFloat16;
  if (name == "fp16") return c10::kHalf;
  fail("ERR_ARGUMENT", "precision must be 'fp32', 'bf16' or 'fp16', got '" + name + "'");
}

}  // namespace nodetune::train
