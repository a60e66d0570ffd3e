// The switch for nodetune's fused CPU training ops (nn/swiglu.h, nn/rms_norm.h, the loss rows of
// nn/linear_cross_entropy.cc, attention that recomputes its probabilities, nn/lse_attention.h, and grouped-query
// attention without repeated keys in nn/layers.cc): each replaces several
// LibTorch ops (casts, temporaries, one pass each) by one pass forward and one backward, in float32 arithmetic over
// float32 or bfloat16 tensors. Measured need: at the 0.5B Qwen2 shape a LoRA bf16 step spent a third of its time
// outside the matrix products (docs/PERFORMANCE.md, issue 15).
#pragma once
#include <ATen/ATen.h>

namespace nodetune::nn {

// Whether the fused training ops take x: a CPU tensor of float32 or bfloat16, a CPU with AVX2 + FMA, and
// NODETUNE_TRAIN_FUSED is not "off" (read at every call, so a test or a benchmark compares both paths in one
// process). Otherwise the callers keep their LibTorch form (CUDA, float16, other CPUs).
bool train_fusions_apply(const at::Tensor& x);

}  // namespace nodetune::nn
