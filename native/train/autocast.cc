#include "train/autocast.h"

#include <ATen/autocast_mode.h>

#include <string>

#include "core/error.h"

namespace nodetune::train {

AutocastScope::AutocastScope(const c10::Device& device, c10::ScalarType dtype) {
  if (dtype == c10::kFloat) return;
  cuda_ = device.is_cuda();
  if (!cuda_ && dtype != c10::kBFloat16)
    fail("ERR_DEVICE", "mixed precision on the CPU is bfloat16 only ('bf16'); float16 autocast needs a CUDA device");
  // LibTorch >= 2.4 also offers at::autocast::set_autocast_enabled(device_type, ...); these per-backend calls
  // exist in 1.13 and 2.x alike.
  if (cuda_) {
    previous_enabled_ = at::autocast::is_enabled();
    previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    previous_enabled_ = at::autocast::is_cpu_enabled();
    previous_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
  at::autocast::increment_nesting();
  active_ = true;
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (cuda_) {
    at::autocast::set_enabled(previous_enabled_);
    at::autocast::set_autocast_gpu_dtype(previous_dtype_);
  } else {
    at::autocast::set_cpu_enabled(previous_enabled_);
    at::autocast::set_autocast_cpu_dtype(previous_dtype_);
  }
}

c10::ScalarType parse_precision(const std::string& name) {
  if (name == "fp32") return c10::kFloat;
  if (name == "bf16") return c10::kBFloat16;
  if (name == "fp16") return c10::kHalf;
  fail("ERR_ARGUMENT", "precision must be 'fp32', 'bf16' or 'fp16', got '" + name + "'");
}

}  // namespace nodetune::train
