#include "nn/checkpoint.h"

#include <ATen/core/grad_mode.h>
#include <ATen/core/ivalue.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/custom_class.h>

#include "core/rng.h"

namespace nodetune::nn {
namespace {

// Keeps the block alive in the autograd graph until backward has run.
struct BlockHolder : torch::CustomClassHolder {
  explicit BlockHolder(Block b) : block(std::move(b)) {}
  Block block;
};

struct CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
  // `anchor` always requires grad, so the graph reaches this node even when `input` does not (frozen embeddings).
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                                                const at::Tensor& anchor, c10::intrusive_ptr<BlockHolder> holder) {
    const c10::Device device = input.device();
    std::vector<uint8_t> state = rng_state(device.is_cuda() ? device : c10::Device(c10::kCPU));
    ctx->saved_data["block"] = c10::IValue::make_capsule(holder);
    ctx->saved_data["rng"] = at::from_blob(state.data(), {static_cast<int64_t>(state.size())}, at::kByte).clone();
    ctx->save_for_backward({input});
    return {holder->block(input)};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto holder = c10::static_intrusive_pointer_cast<BlockHolder>(ctx->saved_data["block"].toCapsule());
    at::Tensor input = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    const c10::Device device = input.device().is_cuda() ? input.device() : c10::Device(c10::kCPU);
    // Recompute with the first run's random state, then put the current state back.
    std::vector<uint8_t> now = rng_state(device);
    at::Tensor saved = ctx->saved_data["rng"].toTensor();
    std::vector<uint8_t> then(saved.data_ptr<uint8_t>(), saved.data_ptr<uint8_t>() + saved.numel());
    set_rng_state(device, then);
    at::Tensor output;
    {
      at::AutoGradMode enable(true);
      output = holder->block(input);
    }
    set_rng_state(device, now);
    // Parameters used by the block accumulate their gradients here, as in PyTorch's reentrant checkpoint.
    torch::autograd::backward({output}, {grads[0]});
    return {input.grad(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor checkpointed(Block block, const at::Tensor& input) {
  static thread_local at::Tensor anchor;
  // set_requires_grad: ATen's factories ignore requires_grad in their options (with frozen embeddings, as under LoRA,
  // the anchor is then the only input that requires grad).
  if (!anchor.defined()) anchor = at::zeros({}), anchor.set_requires_grad(true);
  auto holder = c10::make_intrusive<BlockHolder>(std::move(block));
  return CheckpointFunction::apply(input, anchor, holder)[0];
}

}  // namespace nodetune::nn
