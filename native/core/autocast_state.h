// LibTorch's autocast state (per thread) for one device type, read and set through the calls each LibTorch
// version offers: from 2.4 the device-generic ones (at::autocast::is_autocast_enabled(kCPU), ...), because 2.4+
// prints a deprecation warning on stderr at every call of the per-backend ones (is_cpu_enabled(),
// get_autocast_cpu_dtype(), ...: about 130 lines a training step at 0.5B); before 2.4 the per-backend ones, the
// only ones there.
#pragma once
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace nodetune {

// Whether autocast is on for CPU (c10::kCPU) or CUDA (c10::kCUDA) on this thread.
bool autocast_enabled(c10::DeviceType type);
// Autocast's reduced dtype for that device type (bfloat16 by default on CPU, float16 on CUDA).
c10::ScalarType autocast_dtype(c10::DeviceType type);
void set_autocast(c10::DeviceType type, bool enabled, c10::ScalarType dtype);
// On for either device type.
inline bool any_autocast() { return autocast_enabled(c10::kCPU) || autocast_enabled(c10::kCUDA); }

}  // namespace nodetune
