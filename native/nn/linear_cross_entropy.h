// The causal-LM head and its loss as one operation: mean cross-entropy of (h @ W^T) against labels (-100
// ignored) that never keeps the [N, V] logits. Rows are processed in chunks; each chunk's softmax becomes its
// gradient in place (softmax - one-hot) and goes straight into the gradients of h and W, so backward only
// scales what forward already computed. Against logits + log_softmax + nll_loss this saves the log-softmax
// backward pass over [N, V] and the memory of the logits, the log-probabilities and their gradient.
#pragma once
#include <ATen/ATen.h>

namespace nodetune::nn {

// h [N, H], w [V, H] (float32), labels [N] int64. Gradients flow to h and w when they require them. With every
// label -100 the loss is NaN, as cross_entropy's mean over no targets is. No host synchronisation.
at::Tensor linear_cross_entropy(const at::Tensor& h, const at::Tensor& w, const at::Tensor& labels);

}  // namespace nodetune::nn
