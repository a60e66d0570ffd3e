// x @ W^T for a quantized frozen weight W [out, in] (nn/quantized_weight.h), with autograd to x. No full-precision
// copy of W outlives the call: a few rows at a time are dequantized into a reused buffer for each product (forward,
// and again for the gradient of x in backward). Decoding (a few rows of x on the CPU) reads the quantized bytes
// directly instead (int8: one byte per weight against bfloat16's two; NF4: half a byte).
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "nn/quantized_weight.h"

namespace nodetune::nn {

// y = x @ W^T in x's dtype (x [..., in]).
at::Tensor quantized_linear(const std::shared_ptr<const QuantizedWeight>& w, const at::Tensor& x);
// Several quantized weights on the same input (q/k/v, gate/up) for the few rows of a decoding step: one output
// [..., sum of their rows] in x's dtype, the input cast once (no gradient, CPU, the direct products). Undefined when
// that does not apply: then quantized_linear() each.
at::Tensor quantized_linear_rows(const std::vector<std::shared_ptr<const QuantizedWeight>>& ws, const at::Tensor& x);

}  // namespace nodetune::nn
