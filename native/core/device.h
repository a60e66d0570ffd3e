// Device and dtype names as users write them ('cpu', 'cuda', 'cuda:1'; 'float32', 'bfloat16', ...).
// Device is data: a CUDA device asked of a CPU-only LibTorch is an ERR_DEVICE error at run time.
#pragma once
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace nodetune {

// Parses and validates a device name against what this LibTorch build and machine have.
c10::Device parse_device(const std::string& name);
std::string device_name(const c10::Device& device);

// 'float32' | 'float' | 'float16' | 'half' | 'bfloat16' | 'int32' | 'int64' | 'uint8' | 'bool' ...
c10::ScalarType parse_dtype(const std::string& name);
std::string dtype_name(c10::ScalarType type);

bool cuda_available();
int64_t cuda_device_count();

}  // namespace nodetune
