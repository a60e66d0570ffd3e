#include "train/optimizer_state.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <vector>

#include "core/error.h"

namespace nodetune::train {
namespace {

const char* const kShapesKey = "nodetune_parameter_shapes";

// Every parameter's shape, flattened as [rank, d0, d1, ..., rank, d0, ...], in optimizer order.
at::Tensor shape_signature(const torch::optim::Optimizer& optimizer) {
  std::vector<int64_t> sig;
  for (const auto& group : optimizer.param_groups()) {
    for (const auto& p : group.params()) {
      sig.push_back(p.dim());
      for (int64_t d : p.sizes()) sig.push_back(d);
    }
  }
  return at::tensor(sig, at::kLong);
}

std::string describe(const at::Tensor& sig) {
  std::string out;
  const int64_t* d = sig.data_ptr<int64_t>();
  int64_t n = sig.numel(), count = 0;
  for (int64_t i = 0; i < n; ++count) i += d[i] + 1;
  out = std::to_string(count) + " parameters";
  return out;
}

}  // namespace

void save_optimizer_state(const torch::optim::Optimizer& optimizer, const std::string& file) {
  torch::serialize::OutputArchive archive;
  optimizer.save(archive);
  archive.write(kShapesKey, shape_signature(optimizer));
  try {
    archive.save_to(file);
  } catch (const c10::Error& e) {
    fail("ERR_IO", file + ": cannot write the optimizer state (" + std::string(e.what_without_backtrace()) + ")");
  }
}

void load_optimizer_state(torch::optim::Optimizer& optimizer, const std::string& file) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(file);
  } catch (const c10::Error& e) {
    fail("ERR_CHECKPOINT", file + ": not a readable optimizer state (" + std::string(e.what_without_backtrace()) + ")");
  }
  at::Tensor saved;
  if (!archive.try_read(kShapesKey, saved))
    fail("ERR_CHECKPOINT", file + ": not an optimizer state written by nodetune (no parameter shapes)");
  at::Tensor current = shape_signature(optimizer);
  if (!saved.sizes().equals(current.sizes()) || !at::equal(saved, current))
    fail("ERR_STATE", file + ": the optimizer state is for " + describe(saved) + " of other shapes; this model trains " +
                          describe(current) + " (same model, same trainable parameters and adapters are needed)");
  try {
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    fail("ERR_CHECKPOINT", file + ": the optimizer state does not fit this optimizer (" +
                               std::string(e.what_without_backtrace()) + "); was it saved with another optimizer type?");
  }
}

}  // namespace nodetune::train
