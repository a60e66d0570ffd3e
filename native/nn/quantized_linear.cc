#include "nn/quantized_linear.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/custom_class.h>

#include <algorithm>
#include <array>
#include <vector>

#include "core/error.h"
#include "nn/nf4.h"

// Decoding kernels get an AVX2 variant beside the baseline one where GCC can pick per CPU at load (ifunc).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define NODETUNE_TARGET_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NODETUNE_TARGET_CLONES
#endif

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

NODETUNE_TARGET_CLONES
float dot_int8(const float* x, const int8_t* w, int64_t k) {
  float acc[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= k; i += 16)
    for (int t = 0; t < 16; ++t) acc[t] += x[i + t] * float(w[i + t]);
  float s = 0.0f;
  for (int t = 0; t < 16; ++t) s += acc[t];
  for (; i < k; ++i) s += x[i] * float(w[i]);
  return s;
}

// One row of an NF4 weight (whole blocks): sum over blocks of absmax * sum(x * code).
NODETUNE_TARGET_CLONES
float dot_nf4(const float* x, const uint8_t* bytes, const float* pairs, const float* scale, int64_t k, int64_t bs) {
  float s = 0.0f;
  for (int64_t b = 0; b * bs < k; ++b) {
    float acc[8] = {0};
    const uint8_t* p = bytes + b * bs / 2;
    const float* xb = x + b * bs;
    for (int64_t j = 0; j < bs / 2; j += 4)
      for (int t = 0; t < 4; ++t) {
        const float* v = pairs + 2 * p[j + t];
        acc[2 * t] += xb[2 * (j + t)] * v[0];
        acc[2 * t + 1] += xb[2 * (j + t) + 1] * v[1];
      }
    float blk = 0.0f;
    for (float a : acc) blk += a;
    s += blk * scale[b];
  }
  return s;
}

// y [M, N] (float32) for a few rows of x, reading the quantized bytes (CPU).
at::Tensor product_direct(const QuantizedWeight& q, const at::Tensor& x) {
  at::Tensor xf = x.to(at::kFloat).contiguous();
  const int64_t m = xf.size(0), k = q.cols, n = q.rows;
  at::Tensor y = at::empty({m, n}, xf.options());
  const float* xp = xf.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  if (q.format == QuantFormat::kInt8) {
    const int8_t* w = q.data.data_ptr<int8_t>();
    const float* scale = q.scale.data_ptr<float>();
    at::parallel_for(0, n, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; ++o)
        for (int64_t r = 0; r < m; ++r) yp[r * n + o] = dot_int8(xp + r * k, w + o * k, k) * scale[o];
    });
    return y;
  }
  // Each byte's two values side by side: one lookup per byte.
  std::array<float, 512> pairs;
  const float* code = q.code.data_ptr<float>();
  for (int b = 0; b < 256; ++b) pairs[2 * b] = code[b >> 4], pairs[2 * b + 1] = code[b & 15];
  const uint8_t* packed = q.packed.data_ptr<uint8_t>();
  const int64_t per_row = k / q.blocksize;
  at::parallel_for(0, n, 16, [&](int64_t lo, int64_t hi) {
    std::vector<float> scale(size_t(per_row * (hi - lo)));
    nf4_block_absmax(q, lo * per_row, hi * per_row, scale.data());
    for (int64_t o = lo; o < hi; ++o) {
      const float* s = scale.data() + (o - lo) * per_row;
      for (int64_t r = 0; r < m; ++r)
        yp[r * n + o] = dot_nf4(xp + r * k, packed + o * k / 2, pairs.data(), s, k, q.blocksize);
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
