#include "nn/rope_backward.h"

#include <torch/csrc/autograd/custom_function.h>

namespace nodetune::nn {

at::Tensor rotate_half(const at::Tensor& x, bool transposed) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor a = x.narrow(-1, 0, half), b = x.narrow(-1, half, half);
  return transposed ? at::cat({b, -a}, -1) : at::cat({-b, a}, -1);
}

namespace {

struct Rope : public torch::autograd::Function<Rope> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin) {
    ctx->save_for_backward({cos, sin});
    ctx->saved_data["dtype"] = int64_t(x.scalar_type());
    return x * cos + rotate_half(x, false) * sin;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& g = grads[0];
    const auto dtype = static_cast<c10::ScalarType>(ctx->saved_data["dtype"].toInt());
    at::Tensor dx = g * saved[0] + rotate_half(g * saved[1], true);
    return {dx.to(dtype), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor rope_with_backward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  return Rope::apply(x, cos, sin);
}

}  // namespace nodetune::nn
