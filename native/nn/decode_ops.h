// The per-op work of a decoding step, fused: RMSNorm and rotary embeddings over the few rows (<= 4) of a
// batch-1..4 decoding step on the CPU, each one pass and one output instead of 7-8 LibTorch ops (casts,
// temporaries, dispatch). At the 0.5B Qwen2 shape a token spends ~22 ms outside its products, most of it in
// thousands of small ops like these (docs/PERFORMANCE.md, issue 18). Same arithmetic as the ATen forms in
// nn/layers.cc, in float32, rounded once to the input's dtype (the ATen forms round bfloat16 after each op).
#pragma once
#include <ATen/ATen.h>

namespace nodetune::nn {

// Whether the fused decoding ops take x: CPU, float32 or bfloat16, at most 4 token rows (`rows`: batch x tokens),
// no gradient wanted, and NODETUNE_DECODE_FUSED is not "off" (read at every call, so a benchmark or a test can
// compare both paths in one process).
bool decode_ops_apply(const at::Tensor& x, int64_t rows);
// Llama RMSNorm: w * (x * rsqrt(mean(x^2) + eps)), w [D] of x's dtype.
at::Tensor decode_rms_norm(const at::Tensor& x, const at::Tensor& w, double eps);
// Rotary embeddings (rotate-half): x [B, H, T, D] (any strides), cos, sin [B, 1, T, D] -> contiguous [B, H, T, D].
at::Tensor decode_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace nodetune::nn
