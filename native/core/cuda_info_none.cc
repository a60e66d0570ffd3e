// Compiled when the chosen LibTorch has no CUDA: there are no CUDA devices to name.
#include "core/runtime.h"

namespace nodetune {
std::vector<std::string> cuda_device_names() { return {}; }
}  // namespace nodetune
