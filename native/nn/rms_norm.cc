#include "nn/rms_norm.h"

#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>

#include "core/workers.h"
#include "nn/fused_rows.h"
#include "nn/train_fusions.h"

namespace nodetune::nn {
namespace {

#ifdef NODETUNE_X86_KERNELS
// y = (x * rstd) * w, rstd = 1 / sqrt(mean(x^2) + eps), over rows [begin, end) of d elements; xs: x's row stride
// (y is dense); w in float32.
template <class T>
__attribute__((target("avx2,fma"))) void rms_rows(const T* x, int64_t xs, const float* w, T* y, float* rstd, int64_t d,
                                                   float eps, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const T* xr = x + r * xs;
    T* yr = y + r * d;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= d; i += 16) {
      const __m256 v0 = Lanes<T>::load(xr + i), v1 = Lanes<T>::load(xr + i + 8);
      a0 = _mm256_fmadd_ps(v0, v0, a0);
      a1 = _mm256_fmadd_ps(v1, v1, a1);
    }
    for (; i + 8 <= d; i += 8) {
      const __m256 v = Lanes<T>::load(xr + i);
      a0 = _mm256_fmadd_ps(v, v, a0);
    }
    float sum = sum8(_mm256_add_ps(a0, a1));
    for (; i < d; ++i) sum += float(xr[i]) * float(xr[i]);
    const float inv = 1.f / std::sqrt(sum / float(d) + eps);
    rstd[r] = inv;
    const __m256 iv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= d; i += 8)
      Lanes<T>::store(yr + i, _mm256_mul_ps(_mm256_mul_ps(Lanes<T>::load(xr + i), iv), _mm256_loadu_ps(w + i)));
    for (; i < d; ++i) yr[i] = T(float(xr[i]) * inv * w[i]);
  }
}

// Over rows [begin, end): with g = dy * w and c = sum(g * x), dx = rstd * g - (rstd^3 * c / d) * x (dx null: not
// wanted), and dw += dy * x * rstd (dw null: not wanted; float32 [d]). dys, xs: row strides (dx is dense).
template <class T>
__attribute__((target("avx2,fma"))) void rms_grad_rows(const T* dy, int64_t dys, const T* x, int64_t xs, const float* w,
                                                        const float* rstd, T* dx, float* dw, int64_t d, int64_t begin,
                                                        int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const T* dr = dy + r * dys;
    const T* xr = x + r * xs;
    const float inv = rstd[r];
    if (dx) {
      T* dxr = dx + r * d;
      __m256 acc = _mm256_setzero_ps();
      int64_t i = 0;
      for (; i + 8 <= d; i += 8)
        acc = _mm256_fmadd_ps(_mm256_mul_ps(Lanes<T>::load(dr + i), _mm256_loadu_ps(w + i)), Lanes<T>::load(xr + i),
                              acc);
      float c = sum8(acc);
      for (; i < d; ++i) c += float(dr[i]) * w[i] * float(xr[i]);
      const float k = inv * inv * inv * c / float(d);
      const __m256 iv = _mm256_set1_ps(inv), kv = _mm256_set1_ps(k);
      for (i = 0; i + 8 <= d; i += 8) {
        const __m256 g = _mm256_mul_ps(Lanes<T>::load(dr + i), _mm256_loadu_ps(w + i));
        Lanes<T>::store(dxr + i, _mm256_fnmadd_ps(kv, Lanes<T>::load(xr + i), _mm256_mul_ps(iv, g)));
      }
      for (; i < d; ++i) dxr[i] = T(inv * (float(dr[i]) * w[i]) - k * float(xr[i]));
    }
    if (dw) {
      const __m256 iv = _mm256_set1_ps(inv);
      int64_t i = 0;
      for (; i + 8 <= d; i += 8) {
        const __m256 xh = _mm256_mul_ps(Lanes<T>::load(xr + i), iv);
        _mm256_storeu_ps(dw + i, _mm256_fmadd_ps(Lanes<T>::load(dr + i), xh, _mm256_loadu_ps(dw + i)));
      }
      for (; i < d; ++i) dw[i] += float(dr[i]) * (float(xr[i]) * inv);
    }
  }
}

template <class T>
void forward_rows(const at::Tensor& x, const at::Tensor& w, at::Tensor& y, at::Tensor& rstd, float eps) {
  const int64_t rows = x.size(0), d = x.size(1), xs = x.stride(0);
  const T* xp = x.data_ptr<T>();
  const float* wp = w.data_ptr<float>();
  T* yp = y.data_ptr<T>();
  float* rp = rstd.data_ptr<float>();
  parallel_range(0, rows, piece_rows(d), [&](int64_t b, int64_t e) { rms_rows(xp, xs, wp, yp, rp, d, eps, b, e); });
}

// The rows split into blocks of whole rows, claimed by the threads one at a time: with dw wanted, one per row of
// `partial` (at most 4 per thread), where the block's dw sums in float32, added up at the end, so the result does
// not depend on which thread ran which block.
template <class T>
void backward_rows(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& w, const at::Tensor& rstd,
                   at::Tensor& dx, at::Tensor& partial) {
  const int64_t rows = x.size(0), d = x.size(1), dys = dy.stride(0), xs = x.stride(0);
  const int64_t blocks = partial.defined() ? partial.size(0) : (rows + piece_rows(d) - 1) / piece_rows(d);
  const T *dp = dy.data_ptr<T>(), *xp = x.data_ptr<T>();
  const float *wp = w.data_ptr<float>(), *rp = rstd.data_ptr<float>();
  T* dxp = dx.defined() ? dx.data_ptr<T>() : nullptr;
  float* pp = partial.defined() ? partial.data_ptr<float>() : nullptr;
  parallel_range(0, blocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      rms_grad_rows(dp, dys, xp, xs, wp, rp, dxp, pp ? pp + k * d : nullptr, d, rows * k / blocks,
                    rows * (k + 1) / blocks);
  });
}

struct RmsNorm : public torch::autograd::Function<RmsNorm> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                            double eps) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    at::Tensor xr = as_rows(x), wf = w.to(at::kFloat).contiguous();
    at::Tensor y = at::empty(xr.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
    at::Tensor rstd = at::empty({xr.size(0)}, x.options().dtype(at::kFloat));
    if (x.scalar_type() == at::kFloat) forward_rows<float>(xr, wf, y, rstd, float(eps));
    else forward_rows<at::BFloat16>(xr, wf, y, rstd, float(eps));
    ctx->save_for_backward({x, w});
    ctx->saved_data["rstd"] = rstd;
    return y.view(x.sizes());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1];
    const at::Tensor rstd = ctx->saved_data["rstd"].toTensor();
    const bool need_x = ctx->needs_input_grad(0), need_w = ctx->needs_input_grad(1);
    at::Tensor xr = as_rows(x), dy = as_rows(grads[0].to(x.scalar_type())), wf = w.to(at::kFloat).contiguous();
    const int64_t rows = xr.size(0), d = xr.size(1);
    at::Tensor dx = need_x ? at::empty(xr.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous))
                           : at::Tensor();
    at::Tensor partial;
    if (need_w) {
      const int64_t blocks = std::min<int64_t>(4 * worker_count(), (rows + piece_rows(d) - 1) / piece_rows(d));
      partial = at::zeros({std::max<int64_t>(blocks, 1), d}, x.options().dtype(at::kFloat));
    }
    if (x.scalar_type() == at::kFloat) backward_rows<float>(dy, xr, wf, rstd, dx, partial);
    else backward_rows<at::BFloat16>(dy, xr, wf, rstd, dx, partial);
    return {need_x ? dx.view(x.sizes()) : at::Tensor(), need_w ? partial.sum(0).to(w.scalar_type()) : at::Tensor(),
            at::Tensor()};
  }
};
#endif

}  // namespace

bool rms_norm_fused_applies(const at::Tensor& x, const at::Tensor& w) {
  return x.dim() >= 1 && x.numel() > 0 && w.dim() == 1 && w.size(0) == x.size(-1) &&
         w.scalar_type() == x.scalar_type() && w.device() == x.device() && train_fusions_apply(x);
}

at::Tensor rms_norm_fused(const at::Tensor& x, const at::Tensor& w, double eps) {
#ifdef NODETUNE_X86_KERNELS
  return RmsNorm::apply(x, w, eps);
#else
  (void)x, (void)w, (void)eps;
  TORCH_INTERNAL_ASSERT(false, "rms_norm_fused: no x86 kernels in this build (rms_norm_fused_applies is false)");
#endif
}

}  // namespace nodetune::nn
