// Cross-entropy over rows of logits in one pass per row and no float32 copy (nn/linear_cross_entropy.cc's fused
// CPU path): each row's log-sum-exp in float32 from float32 or bfloat16 logits, its loss, and, when asked, the
// row's gradient (softmax - one-hot) x scale written over the logits in their own dtype. Replaces a float32 cast,
// log_softmax, exp, scatter, a scale and a cast back over [rows, V] (at a 152k vocabulary, 39M values per
// 256-token sequence).
#pragma once
#include <ATen/ATen.h>

namespace nodetune::nn {

// logits [R, V] contiguous, float32 or bfloat16, on the CPU; target [R] int64 in [0, V) (checked: ERR_DATA
// names the row and the id); scale [R] float32 (each row's weight in the loss: 1 / counted rows, 0 for ignored
// rows). Returns sum_r scale[r] * (logsumexp(logits[r]) - logits[r, target[r]]) as a float32 scalar tensor. With
// `gradient`, logits[r] becomes (softmax(logits[r]) - one_hot(target[r])) * scale[r] (zeros where scale is 0).
// Needs train_fusions_apply(logits) (nn/train_fusions.h).
at::Tensor cross_entropy_rows(at::Tensor& logits, const at::Tensor& target, const at::Tensor& scale, bool gradient);

}  // namespace nodetune::nn
