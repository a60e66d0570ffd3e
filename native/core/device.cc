#include "core/device.h"

#include <torch/cuda.h>

#include <cctype>

#include "core/error.h"

namespace nodetune {

bool cuda_available() { return torch::cuda::is_available(); }

int64_t cuda_device_count() { return cuda_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0; }

c10::Device parse_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    int64_t index = 0;
    if (name.size() > 5) {
      const std::string digits = name.substr(5);
      bool ok = !digits.empty() && digits.size() <= 3;
      for (char c : digits) ok = ok && std::isdigit(static_cast<unsigned char>(c));
      if (!ok) fail("ERR_DEVICE", "invalid device '" + name + "': expected 'cpu', 'cuda' or 'cuda:N'");
      index = std::stoll(digits);
    }
    if (!cuda_available())
      fail("ERR_DEVICE", "device '" + name +
                             "' asked for, but CUDA is not available: this LibTorch build or this machine has no "
                             "CUDA GPU (use 'cpu', or build against a CUDA LibTorch with LIBTORCH=...)");
    const int64_t count = cuda_device_count();
    if (index >= count)
      fail("ERR_DEVICE", "device '" + name + "' does not exist: this machine has " + std::to_string(count) +
                             " CUDA device(s) (cuda:0..cuda:" + std::to_string(count - 1) + ")");
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  fail("ERR_DEVICE", "invalid device '" + name + "': expected 'cpu', 'cuda' or 'cuda:N'");
}

std::string device_name(const c10::Device& device) {
  if (device.is_cpu()) return "cpu";
  if (device.is_cuda()) return "cuda:" + std::to_string(device.has_index() ? device.index() : 0);
  return device.str();
}

c10::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32" || name == "float") return c10::kFloat;
  if (name == "float16" || name == "half") return c10::kHalf;
  if (name == "bfloat16") return c10::kBFloat16;
  if (name == "float64" || name == "double") return c10::kDouble;
  if (name == "int32" || name == "int") return c10::kInt;
  if (name == "int64" || name == "long") return c10::kLong;
  if (name == "int16") return c10::kShort;
  if (name == "int8") return c10::kChar;
  if (name == "uint8") return c10::kByte;
  if (name == "bool") return c10::kBool;
  fail("ERR_DTYPE", "unknown dtype '" + name +
                        "': expected one of float32, float16, bfloat16, float64, int32, int64, int16, int8, uint8, bool");
}

std::string dtype_name(c10::ScalarType type) {
  switch (type) {
    case c10::kFloat: return "float32";
    case c10::kHalf: return "float16";
    case c10::kBFloat16: return "bfloat16";
    case c10::kDouble: return "float64";
    case c10::kInt: return "int32";
    case c10::kLong: return "int64";
    case c10::kShort: return "int16";
    case c10::kChar: return "int8";
    case c10::kByte: return "uint8";
    case c10::kBool: return "bool";
    default: return c10::toString(type);
  }
}

}  // namespace nodetune
