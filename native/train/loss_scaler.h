// Dynamic loss scaling for float16 training (what PyTorch's GradScaler does): the loss is multiplied by `scale`
// before backward so small float16 gradients do not flush to zero; the gradients are divided by it again before
// clipping and the step. A step whose gradients are not finite is skipped and the scale backed off; after
// `growth_interval` finite steps in a row the scale grows.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace nodetune::train {

struct LossScaler {
  bool enabled = false;
  double scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  int64_t good_steps = 0;

  at::Tensor scaled(const at::Tensor& loss) const { return enabled ? loss * scale : loss; }
  // Divides the gradients by the scale (in place).
  void unscale(std::vector<at::Tensor>& grads) const;
  // After a step: back off on non-finite gradients, grow after growth_interval finite steps.
  void update(bool finite);
};

}  // namespace nodetune::train
