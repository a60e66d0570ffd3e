// x @ W^T for the few rows of a decoding step with bfloat16 weights on the CPU. Batch-1 decoding reads every weight
// once per token, so it runs at memory speed or not at all; LibTorch 1.13's bfloat16 matrix-vector product reads
// the lm_head of the 0.5B Qwen2 shape (272 MB) at about 5.5 GB/s on this machine against 16-23 GB/s for a plain
// read. This kernel streams each weight row once (AVX2: 8 bfloat16 widened to float32 per load, fused multiply-add
// into float32 accumulators for up to 4 input rows, rows of W split over LibTorch's threads).
#pragma once
#include <ATen/ATen.h>

namespace nodetune::nn {

// Whether decode_linear() takes this product: W [N, K] bfloat16 contiguous on the CPU, x with at most 4 rows,
// no gradient wanted, and a CPU with AVX2 and FMA.
bool decode_linear_applies(const at::Tensor& x, const at::Tensor& w);
// x [..., K] @ W^T (+ bias [N], when defined) -> [..., N] in W's dtype (float32 accumulation, one rounding), as
// at::linear(x, w, bias).
at::Tensor decode_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias);

}  // namespace nodetune::nn
