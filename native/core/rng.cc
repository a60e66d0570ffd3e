#include "core/rng.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <cstring>
#include <mutex>

#include "core/device.h"
#include "core/error.h"

namespace nodetune {

void manual_seed(uint64_t seed) {
  // at::manual_seed seeds the CPU generator and, when CUDA is initialised, every CUDA generator.
  at::manual_seed(seed);
}

std::vector<uint8_t> rng_state(const c10::Device& device) {
  auto gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  at::Tensor state = gen.get_state().contiguous();
  std::vector<uint8_t> bytes(static_cast<size_t>(state.numel()));
  std::memcpy(bytes.data(), state.data_ptr<uint8_t>(), bytes.size());
  return bytes;
}

void set_rng_state(const c10::Device& device, const std::vector<uint8_t>& state) {
  auto gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  const int64_t expected = gen.get_state().numel();
  if (static_cast<int64_t>(state.size()) != expected)
    fail("ERR_ARGUMENT", "setRngState(): the state for " + device_name(device) + " is " + std::to_string(expected) +
                             " bytes, got " + std::to_string(state.size()) + " (was it saved by another LibTorch version or device?)");
  at::Tensor t = at::empty({expected}, at::kByte);
  std::memcpy(t.data_ptr<uint8_t>(), state.data(), state.size());
  gen.set_state(t);
}

}  // namespace nodetune
