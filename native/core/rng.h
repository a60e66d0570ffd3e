// The random number generators LibTorch draws dropout masks and initialisations from: seeding, and their
// state as bytes (for checkpoints that resume exactly). Device is data: 'cpu' or a CUDA device.
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <vector>

namespace nodetune {

// Seeds the CPU generator and every CUDA generator (like torch.manual_seed).
void manual_seed(uint64_t seed);

// The generator state of `device` as bytes, and back (ERR_ARGUMENT when the bytes do not fit).
std::vector<uint8_t> rng_state(const c10::Device& device);
void set_rng_state(const c10::Device& device, const std::vector<uint8_t>& state);

}  // namespace nodetune
