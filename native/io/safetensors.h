// Safetensors tensor bytes in and out. The header JSON is parsed and validated in TypeScript
// (lib/models/safetensors.ts); this side memory-maps the files, re-checks every range against the
// file size, and copies each tensor into its parameter (converting dtype, moving device).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nn/params.h"

namespace nodetune::io {

struct TensorEntry {
  std::string param;   // parameter name in Params
  std::string file;    // safetensors file
  std::string dtype;   // F32 | F16 | BF16 | F64
  std::vector<int64_t> shape;
  int64_t offset = 0;  // absolute byte offset in the file
  int64_t length = 0;  // bytes
};

// Validates every entry first (nothing is written on failure), then copies. ERR_CHECKPOINT names the
// file and tensor.
void load_tensors(nn::Params& params, const std::vector<TensorEntry>& entries);

// Owned CPU copies of the tensors `entries` describe (validated as load_tensors does, against the entries'
// own shapes): the parts of a checkpoint that are not parameters themselves (quantization statistics).
std::vector<at::Tensor> read_tensors(const std::vector<TensorEntry>& entries);

// Writes <8-byte little-endian header length><header><tensor bytes in `names` order> to `path`.
// The header (already padded) must describe exactly these tensors in this order. Returns bytes written.
int64_t write_safetensors(const nn::Params& params, const std::string& path, const std::string& header,
                          const std::vector<std::string>& names);

}  // namespace nodetune::io
