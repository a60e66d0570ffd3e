// NF4 (4-bit NormalFloat, QLoRA) and its 8-bit "dynamic" code for the double-quantized block scales, on the
// CPU: the code tables, blockwise quantization of a float range, and the per-block scale of a weight.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <vector>

#include "nn/quantized_weight.h"

namespace nodetune::nn {

// The 16 NF4 values (QLoRA paper, Appendix E; bitsandbytes' get_4bit_type("nf4")), ascending, in [-1, 1].
const std::array<float, 16>& nf4_code();
// bitsandbytes' create_dynamic_map(signed=True): 256 ascending values in [-1, 1] (sign, a decimal exponent from
// 0 to -6, and a linear fraction whose bits shrink as the exponent grows), used for the nested absmax.
const std::vector<float>& dynamic_code();
// Index of the nearest entry of an ascending table.
int nearest_code(const float* table, int size, float x);

// Quantizes `n` floats (from element `first` of the weight, a multiple of the block size) into q.packed and the
// float32 block absmax (absmax[first / blocksize ...]).
void nf4_quantize_range(const float* src, int64_t first, int64_t n, int64_t blocksize, uint8_t* packed, float* absmax);
// Double quantization of the block absmax values (QLoRA): offset = their mean, then blocks of `nested_blocksize`
// quantized with dynamic_code(). Fills q.absmax (uint8), q.nested_absmax, q.nested_code and q.offset.
void nf4_double_quantize(QuantizedWeight& q, const at::Tensor& absmax);
// The float absmax of blocks [b0, b1) (CPU parts).
void nf4_block_absmax(const QuantizedWeight& q, int64_t b0, int64_t b1, float* out);
// Elements [e0, e1) of the flat weight into `out` (CPU parts), any float dtype.
void nf4_dequantize_range_cpu(const QuantizedWeight& q, int64_t e0, int64_t e1, const at::Tensor& out);
// One row of x times one row of an NF4 weight: whole blocks (k and bs multiples of 8), scale[b] each block's absmax.
float nf4_dot_row(const float* x, const uint8_t* bytes, const float* code, const float* scale, int64_t k, int64_t bs);
// The same with tensor operations, on any device.
at::Tensor nf4_dequantize_range(const QuantizedWeight& q, int64_t e0, int64_t e1, c10::ScalarType dtype);

}  // namespace nodetune::nn
