// The causal-LM head and its loss as one operation: mean cross-entropy of (h @ W^T) against labels (-100
// ignored) that never keeps the [N, V] logits. Rows are processed in chunks; each chunk's softmax becomes its
// gradient in place (softmax - one-hot) and goes straight into the gradients of h and W, so backward only
// scales what forward already computed. Against logits + log_softmax + nll_loss this saves the log-softmax
// backward pass over [N, V] and the memory of the logits, the log-probabilities and their gradient.
#pragma once
#include <ATen/ATen.h>

namespace nodetune::nn {

// h [N, H], w [V, H], labels [N] int64; the products run in `compute` (float32, or bfloat16 for a bfloat16 model
// or under autocast: h and w are cast to it once), the log-softmax and the loss in float32. The loss is float32;
// the gradients have the dtypes of h and w and flow to them when they require them. With every label -100 the
// loss is NaN, as cross_entropy's mean over no targets is. No host synchronisation.
at::Tensor linear_cross_entropy(const at::Tensor& h, const at::Tensor& w, const at::Tensor& labels,
                                c10::ScalarType compute = at::kFloat);

}  // namespace nodetune::nn
