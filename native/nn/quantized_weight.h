// A frozen linear weight kept quantized: weight-only int8 (one absmax scale per output channel) or 4-bit NF4
// (QLoRA: blocks of 64 elements over the row-major weight, each scaled by its absmax, the absmax values
// themselves quantized to 8 bits in blocks of 256 around their mean). The layout is bitsandbytes', so its
// checkpoints load as they are (lib/models/bnb.ts). Quantizing runs on the CPU; the parts then move to the
// model's device, where dequantize_rows() works with tensor operations (a plain loop on the CPU).
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>

namespace nodetune::nn {

enum class QuantFormat { kInt8, kNf4 };

struct QuantizedWeight {
  QuantFormat format = QuantFormat::kInt8;
  int64_t rows = 0, cols = 0;  // the linear map's [out, in]
  // The parameter is stored [in, out] (GPT-2 Conv1D): the quantized matrix is its transpose.
  bool transposed = false;
  // int8: data int8 [rows, cols]; scale float32 [rows] (absmax / 127): w = data * scale.
  at::Tensor data, scale;
  // nf4: packed uint8 [ceil(n / 2)], element 2i in the high nibble and 2i+1 in the low one; code float32 [16];
  // absmax float32 [blocks], or (double quantization) uint8 [blocks] decoded as
  // nested_code[absmax[b]] * nested_absmax[b / nested_blocksize] + offset.
  at::Tensor packed, code, absmax, nested_absmax, nested_code;
  int64_t blocksize = 64, nested_blocksize = 256;
  double offset = 0.0;

  bool nested() const { return nested_absmax.defined(); }
  int64_t numel() const { return rows * cols; }
  // Bytes held by the quantized parts.
  int64_t nbytes() const;
  std::string format_name() const { return format == QuantFormat::kInt8 ? "int8" : "nf4"; }
  // Where the parts live.
  c10::Device device() const { return format == QuantFormat::kInt8 ? data.device() : packed.device(); }
  // The same weight with every part moved to `device`.
  std::shared_ptr<QuantizedWeight> to(c10::Device device) const;
};

// "int8" | "nf4"; anything else is an ERR_ARGUMENT naming the option.
QuantFormat parse_quant_format(const std::string& name);

// Quantizes a weight in the parameter's layout ([out, in], or [in, out] when transposed), any float dtype; the
// parts go to `device`. Processes a bounded number of elements at a time (no full float32 copy of big weights).
std::shared_ptr<QuantizedWeight> quantize_weight(const at::Tensor& weight, QuantFormat format, bool transposed,
                                                 c10::Device device);

// Rows [r0, r0 + n) of the [rows, cols] matrix into `out` ([n, cols], contiguous, its dtype and q's device).
void dequantize_rows(const QuantizedWeight& q, int64_t r0, int64_t n, const at::Tensor& out);
// The whole weight in the parameter's layout, in `dtype`.
at::Tensor dequantize_weight(const QuantizedWeight& q, c10::ScalarType dtype);

// Checks that the statistics fit the weights (sizes, finite non-negative scales): ERR_CHECKPOINT naming `name`.
void check_quantized(const QuantizedWeight& q, const std::string& name);

}  // namespace nodetune::nn
