#include "train/loss_scaler.h"

namespace nodetune::train {

void LossScaler::unscale(std::vector<at::Tensor>& grads) const {
  if (!enabled) return;
  const double inverse = 1.0 / scale;
  for (auto& g : grads) g.mul_(inverse);
}

void LossScaler::update(bool finite) {
  if (!enabled) return;
  if (!finite) {
    scale *= backoff_factor;
    good_steps = 0;
    return;
  }
  if (++good_steps >= growth_interval) {
    scale *= growth_factor;
    good_steps = 0;
  }
}

}  // namespace nodetune::train
