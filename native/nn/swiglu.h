// SwiGLU, the gated MLP activation of Llama / Qwen2 / Mistral blocks: silu(gate) * up in one pass forward and one
// backward instead of LibTorch's silu, mul and their two backward ops (each a pass over [tokens, intermediate] with
// a temporary). In float32 arithmetic over float32 or bfloat16 tensors, rounded once to the dtype; backward
// recomputes silu from the saved gate and up (nothing else is kept). Rows are split over core/workers.h's threads.
// gate and up may be strided row views, read in place; when they are the two halves of one contiguous tensor (the
// gate_up product of nn/layers.cc fused_linear, from 64 token rows), the op takes that tensor and its gradient
// reaches the product whole, without split's backward concatenating two halves.
#pragma once
#include <ATen/ATen.h>

#include <utility>

namespace nodetune::nn {

// silu(gate) * up for gate and up of one shape and dtype: fused when train_fusions_apply(gate) (nn/train_fusions.h),
// else LibTorch's at::silu(gate) * up. Differentiable in both; gradients have the inputs' dtype.
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);

// {f, f @ w^T} for f = swiglu(gate, up) and a trainable w [n, intermediate] of their dtype (LoRA's A on the down
// projection): one node that keeps gate, up and w for backward (SwiGLU keeps gate and up anyway), not f, which the
// product alone would keep: [tokens, intermediate] a layer (4.2 MB at the 1B shape, 256 tokens, bf16). Backward
// recomputes f. Where the fused SwiGLU does not apply, or nothing needs a gradient, returns undefined tensors.
std::pair<at::Tensor, at::Tensor> swiglu_with_product(const at::Tensor& gate, const at::Tensor& up,
                                                      const at::Tensor& w);

}  // namespace nodetune::nn
