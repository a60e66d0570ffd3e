// SwiGLU, the gated MLP activation of Llama / Qwen2 / Mistral blocks: silu(gate) * up in one pass forward and one
// backward instead of LibTorch's silu, mul and their two backward ops (each a pass over [tokens, intermediate] with
// a temporary). In float32 arithmetic over float32 or bfloat16 tensors, rounded once to the dtype; backward
// recomputes silu from the saved gate and up (nothing else is kept). gate and up may be strided row views (the two
// halves of one gate_up product): rows are read in place.
#pragma once
#include <ATen/ATen.h>

namespace nodetune::nn {

// silu(gate) * up for gate and up of one shape and dtype: fused when train_fusions_apply(gate) (nn/train_fusions.h),
// else LibTorch's at::silu(gate) * up. Differentiable in both; gradients have the inputs' dtype.
at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);

}  // namespace nodetune::nn
