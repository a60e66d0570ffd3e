// Compiled instead of cuda_info_none.cc when the chosen LibTorch has CUDA (scripts/native-sources.js).
#include <ATen/cuda/CUDAContext.h>

#include "core/device.h"
#include "core/runtime.h"

namespace nodetune {
std::vector<std::string> cuda_device_names() {
  std::vector<std::string> names;
  for (int64_t i = 0; i < cuda_device_count(); ++i) {
    const auto* props = at::cuda::getDeviceProperties(i);
    names.push_back(std::string(props->name) + " (" + std::to_string(props->totalGlobalMem >> 20) + " MiB)");
  }
  return names;
}
}  // namespace nodetune
