// CUDA device names without compiling against CUDA: the CUDA runtime that a CUDA LibTorch has already loaded
// is found in /proc/self/maps and asked through dlsym. One build of this file serves CPU and CUDA LibTorch
// alike (device is data); on a CPU-only LibTorch there are no devices and nothing is looked up.
#include <dlfcn.h>

#include <fstream>

#include "core/device.h"
#include "core/runtime.h"

namespace nodetune {
namespace {

std::string loaded_cudart() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    if (path.find("libcudart") != std::string::npos) return path;
  }
  return "";
}

}  // namespace

std::pair<int, int> cuda_compute_capability(int64_t index) {
  if (index < 0 || index >= cuda_device_count()) return {0, 0};
  const std::string cudart = loaded_cudart();
  if (cudart.empty()) return {0, 0};
  void* handle = dlopen(cudart.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return {0, 0};
  // cudaDeviceGetAttribute(int*, cudaDeviceAttr, int): a stable entry point, unlike cudaDeviceProp's layout.
  using GetAttribute = int (*)(int*, int, int);
  constexpr int kComputeCapabilityMajor = 75, kComputeCapabilityMinor = 76;
  std::pair<int, int> cc{0, 0};
  if (auto get = reinterpret_cast<GetAttribute>(dlsym(handle, "cudaDeviceGetAttribute"))) {
    int major = 0, minor = 0;
    if (get(&major, kComputeCapabilityMajor, static_cast<int>(index)) == 0 &&
        get(&minor, kComputeCapabilityMinor, static_cast<int>(index)) == 0)
      cc = {major, minor};
  }
  dlclose(handle);
  return cc;
}

std::vector<std::string> cuda_device_names() {
  std::vector<std::string> names;
  const int64_t count = cuda_device_count();
  if (count == 0) return names;
  using GetProperties = int (*)(void*, int);
  GetProperties get = nullptr;
  void* handle = nullptr;
  const std::string cudart = loaded_cudart();
  if (!cudart.empty()) handle = dlopen(cudart.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (handle != nullptr) {
    get = reinterpret_cast<GetProperties>(dlsym(handle, "cudaGetDeviceProperties_v2"));
    if (get == nullptr) get = reinterpret_cast<GetProperties>(dlsym(handle, "cudaGetDeviceProperties"));
  }
  for (int64_t i = 0; i < count; ++i) {
    // cudaDeviceProp starts with `char name[256]` in every CUDA version; the buffer is larger than the struct.
    alignas(16) static thread_local char props[16384];
    std::string name;
    if (get != nullptr && get(props, static_cast<int>(i)) == 0) {
      props[255] = '\0';
      name = props;
    }
    names.push_back("cuda:" + std::to_string(i) + (name.empty() ? "" : " " + name));
  }
  if (handle != nullptr) dlclose(handle);
  return names;
}

}  // namespace nodetune
