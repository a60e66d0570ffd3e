// Llama RMSNorm for training: w * (x * rsqrt(mean(x^2) + eps)) in one pass forward and one backward over each row,
// instead of LibTorch's cast to float32, pow, mean, add, rsqrt, mul, cast back and mul by w, each a pass with its
// temporary and a backward op (PowBackward, MeanBackward, ...). Arithmetic in float32 over float32 or bfloat16
// tensors; the output is rounded once to x's dtype (the LibTorch form rounds x * rstd to it before the product by
// w, then again). Kept for backward: x and the rows' rstd in float32. With w requiring grad (full fine-tuning),
// dw = sum over rows of dy * x * rstd, accumulated in float32 per block of rows. Rows are split over
// core/workers.h's threads.
#pragma once
#include <ATen/ATen.h>

namespace nodetune::nn {

// Whether rms_norm_fused takes (x, w): train_fusions_apply(x) (nn/train_fusions.h), w [D] of x's dtype and device,
// D = x.size(-1), and x not empty.
bool rms_norm_fused_applies(const at::Tensor& x, const at::Tensor& w);
// The fused RMSNorm (differentiable in x and w); gradients have x's dtype. Only where rms_norm_fused_applies.
at::Tensor rms_norm_fused(const at::Tensor& x, const at::Tensor& w, double eps);

}  // namespace nodetune::nn
