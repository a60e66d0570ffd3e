// Rotary embeddings (rotate-half) for training as one autograd node: y = x * cos + rotate(x) * sin forward, and
// dx = dy * cos + rotate^T(dy * sin) backward, where rotate(x1, x2) = (-x2, x1) and rotate^T(z1, z2) = (z2, -z1).
// LibTorch's autograd of the composed form keeps a node per op and, for the halves, fills a zeroed tensor of x's
// size per narrow (two per rotated tensor) and sums their gradients back; this backward is four ops.
#pragma once
#include <ATen/ATen.h>

namespace nodetune::nn {

// (x1, x2) -> (-x2, x1) along the last dimension (D even); with `transposed`, (z1, z2) -> (z2, -z1).
at::Tensor rotate_half(const at::Tensor& x, bool transposed = false);
// x [.., D] (D even), cos and sin broadcastable to x and not requiring gradients; the gradient has x's dtype.
at::Tensor rope_with_backward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace nodetune::nn
