#include "nn/train_fusions.h"

#include <cstdlib>
#include <cstring>

#include "nn/simd.h"

namespace nodetune::nn {

bool train_fusions_apply(const at::Tensor& x) {
#ifdef NODETUNE_X86_KERNELS
  if (!x.defined() || !x.device().is_cpu()) return false;
  if (x.scalar_type() != at::kFloat && x.scalar_type() != at::kBFloat16) return false;
  if (!has_avx2()) return false;
  const char* env = std::getenv("NODETUNE_TRAIN_FUSED");
  return !(env && std::strcmp(env, "off") == 0);
#else
  (void)x;
  return false;
#endif
}

}  // namespace nodetune::nn
