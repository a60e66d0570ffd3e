#include "nn/decode_ops.h"

#include <ATen/core/grad_mode.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace nodetune::nn {
namespace {

constexpr int64_t kMaxRows = 4;

template <typename T>
void rms_rows(const T* x, const T* w, T* y, int64_t rows, int64_t d, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * d;
    T* yr = y + r * d;
    float sum = 0.f;
    for (int64_t i = 0; i < d; ++i) sum += float(xr[i]) * float(xr[i]);
    const float inv = 1.f / std::sqrt(sum / float(d) + eps);
    // As the ATen form: normalised in float32, rounded to T, then scaled by w in T.
    for (int64_t i = 0; i < d; ++i) yr[i] = T(float(w[i]) * float(T(float(xr[i]) * inv)));
  }
}

template <typename T>
void rope_rows(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, at::Tensor& y) {
  const int64_t b = x.size(0), h = x.size(1), t = x.size(2), d = x.size(3), half = d / 2;
  const T* xp = x.data_ptr<T>();
  const T* cp = cos.data_ptr<T>();
  const T* sp = sin.data_ptr<T>();
  T* yp = y.data_ptr<T>();
  const auto xs = x.strides(), cs = cos.strides();
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi)
      for (int64_t ti = 0; ti < t; ++ti) {
        const T* xr = xp + bi * xs[0] + hi * xs[1] + ti * xs[2];  // last dim contiguous (checked)
        const T* cr = cp + bi * cs[0] + ti * cs[2];
        const T* sr = sp + bi * cs[0] + ti * cs[2];
        T* yr = yp + ((bi * h + hi) * t + ti) * d;
        for (int64_t i = 0; i < half; ++i) {
          yr[i] = T(float(xr[i]) * float(cr[i]) - float(xr[i + half]) * float(sr[i]));
          yr[i + half] = T(float(xr[i + half]) * float(cr[i + half]) + float(xr[i]) * float(sr[i + half]));
        }
      }
}

}  // namespace

bool decode_ops_apply(const at::Tensor& x, int64_t rows) {
  if (!x.defined() || !x.device().is_cpu() || x.dim() < 1 || x.size(-1) == 0 || rows > kMaxRows) return false;
  if (x.scalar_type() != at::kFloat && x.scalar_type() != at::kBFloat16) return false;
  if (at::GradMode::is_enabled() && x.requires_grad()) return false;
  const char* env = std::getenv("NODETUNE_DECODE_FUSED");
  return !(env && std::strcmp(env, "off") == 0);
}

at::Tensor decode_rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  at::Tensor xc = x.contiguous(), wc = w.contiguous();
  at::Tensor y = at::empty_like(xc);
  const int64_t d = x.size(-1), rows = x.numel() / d;
  if (x.scalar_type() == at::kFloat)
    rms_rows(xc.data_ptr<float>(), wc.data_ptr<float>(), y.data_ptr<float>(), rows, d, float(eps));
  else
    rms_rows(xc.data_ptr<at::BFloat16>(), wc.data_ptr<at::BFloat16>(), y.data_ptr<at::BFloat16>(), rows, d, float(eps));
  return y;
}

at::Tensor decode_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  at::Tensor xc = x.stride(-1) == 1 ? x : x.contiguous();
  at::Tensor cc = cos.expand({x.size(0), 1, x.size(2), x.size(3)}).contiguous();
  at::Tensor sc = sin.expand({x.size(0), 1, x.size(2), x.size(3)}).contiguous();
  at::Tensor y = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  if (x.scalar_type() == at::kFloat) rope_rows<float>(xc, cc, sc, y);
  else rope_rows<at::BFloat16>(xc, cc, sc, y);
  return y;
}

}  // namespace nodetune::nn
