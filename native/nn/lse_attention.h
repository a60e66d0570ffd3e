// Attention for training that keeps each query row's log-sum-exp instead of its probabilities: backward recomputes
// the scores (one more q k^T product) and the probabilities from them, as flash attention does, so a layer's
// [heads x T x S] probabilities are not held from forward to backward (4.2 MB a layer at the Llama-3.2-1B shape,
// 256 tokens, bf16; 67 MB over its 16 layers). Grouped-query attention as one [groups x T] block per key/value head,
// without repeating keys and values. Softmax rows in float32 arithmetic over float32 or bfloat16 scores (nn/simd.h
// kernels, split over core/workers.h's threads).
#pragma once
#include <ATen/ATen.h>

namespace nodetune::nn {

// softmax(q k^T * scale + mask) v for q [B, H, T, D], k and v [B, Hkv, S, D] (H a multiple of Hkv) of one dtype and
// an additive mask [B or 1, 1, T, S] (or undefined), differentiable in q, k and v. Applies where gradients are
// recorded and train_fusions_apply(q) holds (nn/train_fusions.h); elsewhere, or for other shapes, returns an
// undefined tensor and the caller keeps its own attention.
at::Tensor lse_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                         double scale);

}  // namespace nodetune::nn
