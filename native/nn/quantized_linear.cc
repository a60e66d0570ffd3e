#include "nn/quantized_linear.h"

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/custom_class.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/workers.h"
#include "nn/int8_decode.h"
#include "nn/nf4.h"

namespace nodetune::nn {
namespace {

// Elements dequantized per product (8 MB in bfloat16): large enough for an efficient matrix product.
constexpr int64_t kTileElements = int64_t(1) << 22;
// Up to this many rows of x (decoding), the CPU reads the quantized weight directly.
constexpr int64_t kDirectRows = kInt8DecodeMaxRows;

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

// y [M, N] (float32) for a few rows of x, reading the quantized bytes (CPU).
at::Tensor product_direct(const QuantizedWeight& q, const at::Tensor& x) {
  at::Tensor xf = x.to(at::kFloat).contiguous();
  const int64_t m = xf.size(0), k = q.cols, n = q.rows;
  at::Tensor y = at::empty({m, n}, xf.options());
  if (m == 0) return y;
  const float* xp = xf.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  if (q.format == QuantFormat::kInt8) {
    int8_decode_product(xp, m, q.data.data_ptr<int8_t>(), q.scale.data_ptr<float>(), k, n, yp);
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

at::Tensor quantized_linear_rows(const std::vector<std::shared_ptr<const QuantizedWeight>>& ws, const at::Tensor& x) {
  if (ws.empty() || !at::isFloatingType(x.scalar_type()) || (at::GradMode::is_enabled() && x.requires_grad()))
    return {};
  at::Tensor x2d = x.reshape({-1, x.size(-1)});
  int64_t total = 0;
  for (const auto& w : ws) {
    if (w->cols != x.size(-1) || w->device() != x.device() || !direct(*w, x2d)) return {};
    total += w->rows;
  }
  at::Tensor xf = x2d.to(at::kFloat).contiguous();
  const int64_t m = xf.size(0);
  at::Tensor y = at::empty({m, total}, xf.options());
  int64_t offset = 0;
  for (const auto& w : ws) {
    if (m == 1 && w->format == QuantFormat::kInt8)  // the row's slice of y directly
      int8_decode_product(xf.data_ptr<float>(), 1, w->data.data_ptr<int8_t>(), w->scale.data_ptr<float>(), w->cols,
                          w->rows, y.data_ptr<float>() + offset);
    else
      y.narrow(1, offset, w->rows).copy_(product_direct(*w, xf));
    offset += w->rows;
  }
  auto sizes = x.sizes().vec();
  sizes.back() = total;
  return y.to(x.scalar_type()).view(sizes);
}

}  // namespace nodetune::nn
