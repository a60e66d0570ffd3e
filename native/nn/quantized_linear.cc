#include "nn/quantized_linear.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/custom_class.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/workers.h"
#include "nn/simd.h"
#include "nn/nf4.h"


namespace nodetune::nn {
namespace {

// Elements dequantized per product (8 MB in bfloat16): large enough for an efficient matrix product.
constexpr int64_t kTileElements = int64_t(1) << 22;
// Up to this many rows of x (decoding), the CPU reads the quantized weight directly.
constexpr int64_t kDirectRows = 4;

// One buffer per thread, grown as needed and reused by every quantized layer.
at::Tensor tile_buffer(int64_t rows, int64_t cols, c10::ScalarType dtype, c10::Device device) {
  static thread_local at::Tensor buffer;
  const int64_t n = rows * cols;
  if (!buffer.defined() || buffer.scalar_type() != dtype || buffer.device() != device || buffer.numel() < n)
    buffer = at::empty({n}, at::TensorOptions().dtype(dtype).device(device));
  return buffer.narrow(0, 0, n).view({rows, cols});
}

int64_t tile_rows(const QuantizedWeight& q) {
  return std::max<int64_t>(1, std::min(q.rows, kTileElements / std::max<int64_t>(1, q.cols)));
}

// y [M, N] = x [M, K] @ W^T, W dequantized tile by tile.
at::Tensor product_by_tiles(const QuantizedWeight& q, const at::Tensor& x) {
  const int64_t step = tile_rows(q);
  if (step >= q.rows) {
    at::Tensor w = tile_buffer(q.rows, q.cols, x.scalar_type(), x.device());
    dequantize_rows(q, 0, q.rows, w);
    return at::mm(x, w.t());
  }
  at::Tensor y = at::empty({x.size(0), q.rows}, x.options());
  for (int64_t r0 = 0; r0 < q.rows; r0 += step) {
    const int64_t n = std::min(step, q.rows - r0);
    at::Tensor w = tile_buffer(n, q.cols, x.scalar_type(), x.device());
    dequantize_rows(q, r0, n, w);
    y.narrow(1, r0, n).copy_(at::mm(x, w.t()));
  }
  return y;
}

// dx [M, K] = dy [M, N] @ W, W dequantized tile by tile.
at::Tensor input_gradient(const QuantizedWeight& q, const at::Tensor& dy) {
  const int64_t step = tile_rows(q);
  at::Tensor dx = at::zeros({dy.size(0), q.cols}, dy.options());
  for (int64_t r0 = 0; r0 < q.rows; r0 += step) {
    const int64_t n = std::min(step, q.rows - r0);
    at::Tensor w = tile_buffer(n, q.cols, dy.scalar_type(), dy.device());
    dequantize_rows(q, r0, n, w);
    dx.addmm_(dy.narrow(1, r0, n), w);
  }
  return dx;
}

// out[m] = sum_i x[m * k + i] * w[i] for MB rows of x and one int8 weight row (scale applied by the caller).
template <int MB>
void dot_int8(const float* x, const int8_t* w, int64_t k, float* out) {
  for (int m = 0; m < MB; ++m) {
    const float* xm = x + m * k;
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= k; i += 8)
      for (int t = 0; t < 8; ++t) acc[t] += xm[i + t] * float(w[i + t]);
    float s = 0.0f;
    for (float a : acc) s += a;
    for (; i < k; ++i) s += xm[i] * float(w[i]);
    out[m] = s;
  }
}

#ifdef NODETUNE_X86_KERNELS
// int8 weights for dot_rows (nn/simd.h): eight widened by one sign-extending load of 8 bytes and a conversion.
struct Int8 {
  __attribute__((target("avx2,fma"))) static __m256 load(const int8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static float one(int8_t v) { return float(v); }
};
#endif

// y[r, o] = scale[o] * (x[r] . w[o]) for output rows o in [lo, hi), r < m <= kDirectRows.
template <int MB>
void int8_rows(const float* x, const int8_t* w, const float* scale, int64_t k, int64_t n, int64_t lo, int64_t hi,
               float* y) {
  auto dot = dot_int8<MB>;
#ifdef NODETUNE_X86_KERNELS
  if (has_avx2()) dot = [](const float* x, const int8_t* w, int64_t k, float* out) { dot_rows<MB, Int8>(w, x, k, out); };
#endif
  float out[MB];
  for (int64_t o = lo; o < hi; ++o) {
    dot(x, w + o * k, k, out);
    for (int r = 0; r < MB; ++r) y[r * n + o] = out[r] * scale[o];
  }
}

// y [M, N] (float32) for a few rows of x, reading the quantized bytes (CPU).
at::Tensor product_direct(const QuantizedWeight& q, const at::Tensor& x) {
  at::Tensor xf = x.to(at::kFloat).contiguous();
  const int64_t m = xf.size(0), k = q.cols, n = q.rows;
  at::Tensor y = at::empty({m, n}, xf.options());
  if (m == 0) return y;
  const float* xp = xf.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  if (q.format == QuantFormat::kInt8) {
    const int8_t* w = q.data.data_ptr<int8_t>();
    const float* scale = q.scale.data_ptr<float>();
    // LibTorch's intra-op threads, as the bf16 kernel (nn/decode_linear.cc): one where OpenBLAS owns the cores. Two
    // plain threads per product (core/workers.h) were slower: a thread started per layer, and under load the
    // product waits for the chunk whose core is busy (docs/PERFORMANCE.md, quantized bases).
    at::parallel_for(0, n, 256, [&](int64_t lo, int64_t hi) {
      switch (m) {
        case 1: return int8_rows<1>(xp, w, scale, k, n, lo, hi, yp);
        case 2: return int8_rows<2>(xp, w, scale, k, n, lo, hi, yp);
        case 3: return int8_rows<3>(xp, w, scale, k, n, lo, hi, yp);
        default: return int8_rows<4>(xp, w, scale, k, n, lo, hi, yp);
      }
    });
    return y;
  }
  const float* code = q.code.data_ptr<float>();
  const uint8_t* packed = q.packed.data_ptr<uint8_t>();
  const int64_t per_row = k / q.blocksize;
  parallel_range(0, n, 64, [&](int64_t lo, int64_t hi) {
    std::vector<float> scale(size_t(per_row * (hi - lo)));
    nf4_block_absmax(q, lo * per_row, hi * per_row, scale.data());
    for (int64_t o = lo; o < hi; ++o) {
      const float* s = scale.data() + (o - lo) * per_row;
      for (int64_t r = 0; r < m; ++r)
        yp[r * n + o] = nf4_dot_row(xp + r * k, packed + o * k / 2, code, s, k, q.blocksize);
    }
  });
  return y;
}

bool direct(const QuantizedWeight& q, const at::Tensor& x2d) {
  if (!x2d.device().is_cpu() || x2d.size(0) > kDirectRows) return false;
  return q.format == QuantFormat::kInt8 || (q.cols % q.blocksize == 0 && q.blocksize % 8 == 0);
}

at::Tensor forward_2d(const QuantizedWeight& q, const at::Tensor& x2d) {
  if (direct(q, x2d)) return product_direct(q, x2d).to(x2d.scalar_type());
  return product_by_tiles(q, x2d);
}

struct WeightHolder : torch::CustomClassHolder {
  explicit WeightHolder(std::shared_ptr<const QuantizedWeight> w) : weight(std::move(w)) {}
  std::shared_ptr<const QuantizedWeight> weight;
};

struct QuantizedLinearFunction : public torch::autograd::Function<QuantizedLinearFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x2d,
                                                c10::intrusive_ptr<WeightHolder> holder) {
    ctx->saved_data["weight"] = c10::IValue::make_capsule(holder);
    return {forward_2d(*holder->weight, x2d)};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto holder = c10::static_intrusive_pointer_cast<WeightHolder>(ctx->saved_data["weight"].toCapsule());
    return {input_gradient(*holder->weight, grads[0].contiguous()), at::Tensor()};
  }
};

}  // namespace

at::Tensor quantized_linear(const std::shared_ptr<const QuantizedWeight>& w, const at::Tensor& x) {
  const QuantizedWeight& q = *w;
  if (x.size(-1) != q.cols)
    fail("ERR_SHAPE", "quantized linear layer takes " + std::to_string(q.cols) + " input features, got " + std::to_string(x.size(-1)));
  if (!at::isFloatingType(x.scalar_type())) fail("ERR_DTYPE", "quantized linear layer needs floating-point input");
  if (x.device() != q.device()) fail("ERR_ARGUMENT", "quantized weight and input are on different devices");
  auto sizes = x.sizes().vec();
  sizes.back() = q.rows;
  at::Tensor x2d = x.reshape({-1, q.cols});
  at::Tensor y;
  if (at::GradMode::is_enabled() && x.requires_grad())
    y = QuantizedLinearFunction::apply(x2d, c10::make_intrusive<WeightHolder>(w))[0];
  else
    y = forward_2d(q, x2d);
  return y.view(sizes);
}

}  // namespace nodetune::nn
