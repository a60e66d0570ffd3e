#include "nn/quantized_weight.h"

#include <ATen/Dispatch.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/workers.h"
#include "nn/nf4.h"

namespace nodetune::nn {
namespace {

// Elements quantized per step: bounds the float32 staging of a big weight (~4 MB).
constexpr int64_t kChunkElements = int64_t(1) << 20;

// Rows [r0, r0 + n) of the [rows, cols] matrix the weight holds, as contiguous float32 (CPU).
at::Tensor float_rows(const at::Tensor& weight, bool transposed, int64_t r0, int64_t n) {
  at::Tensor part = transposed ? weight.narrow(1, r0, n).t() : weight.narrow(0, r0, n);
  return part.to(at::kCPU).to(at::kFloat).contiguous();
}

void quantize_int8(QuantizedWeight& q, const at::Tensor& weight) {
  q.data = at::empty({q.rows, q.cols}, at::kChar);
  q.scale = at::empty({q.rows}, at::kFloat);
  const int64_t step = std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, q.cols));
  for (int64_t r0 = 0; r0 < q.rows; r0 += step) {
    const int64_t n = std::min(step, q.rows - r0);
    // A loop over the float32 staging rather than LibTorch ops: their five temporaries per step, freed on
    // whichever malloc arena they came from, left the loading peak 137 or 190 MB from one run to the next (test 57).
    at::Tensor w = float_rows(weight, q.transposed, r0, n);
    const float* src = w.data_ptr<float>();
    int8_t* dst = q.data.data_ptr<int8_t>() + r0 * q.cols;
    float* scales = q.scale.data_ptr<float>() + r0;
    for (int64_t r = 0; r < n; ++r) {
      const float* row = src + r * q.cols;
      float amax = 0.0f;
      for (int64_t c = 0; c < q.cols; ++c) amax = std::max(amax, std::fabs(row[c]));
      const float scale = amax / 127.0f;
      const float safe = scale > 0.0f ? scale : 1.0f;
      for (int64_t c = 0; c < q.cols; ++c)
        dst[r * q.cols + c] = int8_t(std::clamp(std::nearbyint(row[c] / safe), -127.0f, 127.0f));
      scales[r] = scale;
    }
  }
}

void quantize_nf4(QuantizedWeight& q, const at::Tensor& weight) {
  const int64_t n = q.numel(), bs = q.blocksize;
  const int64_t blocks = (n + bs - 1) / bs;
  q.code = at::tensor(std::vector<float>(nf4_code().begin(), nf4_code().end()), at::kFloat);
  q.packed = at::zeros({(n + 1) / 2}, at::kByte);
  at::Tensor absmax = at::empty({blocks}, at::kFloat);
  // Row steps whose first element starts a block.
  const int64_t align = std::lcm(std::max<int64_t>(1, q.cols), bs) / std::max<int64_t>(1, q.cols);
  const int64_t step = align * std::max<int64_t>(1, kChunkElements / (align * std::max<int64_t>(1, q.cols)));
  for (int64_t r0 = 0; r0 < q.rows; r0 += step) {
    const int64_t rows = std::min(step, q.rows - r0);
    at::Tensor w = float_rows(weight, q.transposed, r0, rows);
    nf4_quantize_range(w.data_ptr<float>(), r0 * q.cols, w.numel(), bs, q.packed.data_ptr<uint8_t>(),
                       absmax.data_ptr<float>());
  }
  nf4_double_quantize(q, absmax);
}

// w = q * scale row by row, over the cores (LibTorch's elementwise kernels run on its one intra-op thread here).
void int8_dequantize_rows_cpu(const QuantizedWeight& q, int64_t r0, int64_t n, const at::Tensor& out) {
  const int8_t* data = q.data.data_ptr<int8_t>() + r0 * q.cols;
  const float* scale = q.scale.data_ptr<float>() + r0;
  const int64_t cols = q.cols;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, out.scalar_type(), "int8_dequantize", [&] {
    scalar_t* dst = out.data_ptr<scalar_t>();
    parallel_range(0, n, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r)
        for (int64_t c = 0; c < cols; ++c) dst[r * cols + c] = scalar_t(float(data[r * cols + c]) * scale[r]);
    });
  });
}

}  // namespace

int64_t QuantizedWeight::nbytes() const {
  int64_t total = 0;
  for (const at::Tensor* t : {&data, &scale, &packed, &code, &absmax, &nested_absmax, &nested_code})
    if (t->defined()) total += int64_t(t->nbytes());
  return total;
}

std::shared_ptr<QuantizedWeight> QuantizedWeight::to(c10::Device device) const {
  auto q = std::make_shared<QuantizedWeight>(*this);
  for (at::Tensor* t : {&q->data, &q->scale, &q->packed, &q->code, &q->absmax, &q->nested_absmax, &q->nested_code})
    if (t->defined()) *t = t->to(device);
  return q;
}

QuantFormat parse_quant_format(const std::string& name) {
  if (name == "int8") return QuantFormat::kInt8;
  if (name == "nf4") return QuantFormat::kNf4;
  fail("ERR_ARGUMENT", "quantize must be 'int8' or 'nf4', got '" + name + "'");
}

std::shared_ptr<QuantizedWeight> quantize_weight(const at::Tensor& weight, QuantFormat format, bool transposed,
                                                 c10::Device device) {
  if (weight.dim() != 2) fail("ERR_SHAPE", "only 2-D linear weights can be quantized");
  at::NoGradGuard no_grad;
  auto q = std::make_shared<QuantizedWeight>();
  q->format = format;
  q->transposed = transposed;
  q->rows = transposed ? weight.size(1) : weight.size(0);
  q->cols = transposed ? weight.size(0) : weight.size(1);
  if (format == QuantFormat::kInt8) quantize_int8(*q, weight);
  else quantize_nf4(*q, weight);
  return device.is_cpu() ? q : q->to(device);
}

void dequantize_rows(const QuantizedWeight& q, int64_t r0, int64_t n, const at::Tensor& out) {
  at::NoGradGuard no_grad;
  if (q.format == QuantFormat::kInt8) {
    if (q.device().is_cpu()) return int8_dequantize_rows_cpu(q, r0, n, out);
    at::Tensor scale = q.scale.narrow(0, r0, n).unsqueeze(1);
    at::mul_out(const_cast<at::Tensor&>(out), q.data.narrow(0, r0, n), scale);
    return;
  }
  const int64_t e0 = r0 * q.cols, e1 = (r0 + n) * q.cols;
  if (q.device().is_cpu()) return nf4_dequantize_range_cpu(q, e0, e1, out);
  out.view({-1}).copy_(nf4_dequantize_range(q, e0, e1, out.scalar_type()));
}

at::Tensor dequantize_weight(const QuantizedWeight& q, c10::ScalarType dtype) {
  at::Tensor w = at::empty({q.rows, q.cols}, at::TensorOptions().dtype(dtype).device(q.device()));
  dequantize_rows(q, 0, q.rows, w);
  return q.transposed ? w.t().contiguous() : w;
}

void check_quantized(const QuantizedWeight& q, const std::string& name) {
  auto bad = [&](const std::string& what) { fail("ERR_CHECKPOINT", "quantized tensor " + name + ": " + what); };
  auto count = [](const at::Tensor& t) { return t.defined() ? t.numel() : int64_t(-1); };
  auto finite_nonneg = [&](const at::Tensor& t, const std::string& part) {
    at::Tensor f = t.to(at::kFloat);
    if (!f.isfinite().all().item<bool>()) bad(part + " holds non-finite values");
    if ((f < 0).any().item<bool>()) bad(part + " holds negative scales");
  };
  const int64_t n = q.numel();
  if (q.format == QuantFormat::kInt8) {
    if (!q.data.defined() || q.data.scalar_type() != at::kChar || q.data.numel() != n)
      bad("the int8 weight does not hold " + std::to_string(q.rows) + " x " + std::to_string(q.cols) + " values");
    if (count(q.scale) != q.rows)
      bad("its scales (SCB) number " + std::to_string(count(q.scale)) + ", the weight has " + std::to_string(q.rows) + " rows");
    finite_nonneg(q.scale, "SCB");
    return;
  }
  if (q.blocksize <= 0 || q.blocksize % 2 != 0) bad("blocksize " + std::to_string(q.blocksize) + " is not a positive even number");
  const int64_t blocks = (n + q.blocksize - 1) / q.blocksize;
  if (count(q.packed) != (n + 1) / 2)
    bad("the packed weight has " + std::to_string(count(q.packed)) + " bytes, " + std::to_string(n) + " 4-bit values need " +
        std::to_string((n + 1) / 2));
  if (count(q.code) != 16) bad("quant_map has " + std::to_string(count(q.code)) + " values, NF4 has 16");
  if (count(q.absmax) != blocks)
    bad("absmax has " + std::to_string(count(q.absmax)) + " values, " + std::to_string(n) + " weights in blocks of " +
        std::to_string(q.blocksize) + " need " + std::to_string(blocks));
  if (!q.nested()) {
    finite_nonneg(q.absmax, "absmax");
    return;
  }
  if (q.nested_blocksize <= 0) bad("nested_blocksize must be positive");
  const int64_t groups = (blocks + q.nested_blocksize - 1) / q.nested_blocksize;
  if (count(q.nested_absmax) != groups)
    bad("nested_absmax has " + std::to_string(count(q.nested_absmax)) + " values, " + std::to_string(blocks) +
        " absmax values in blocks of " + std::to_string(q.nested_blocksize) + " need " + std::to_string(groups));
  if (count(q.nested_code) != 256) bad("nested_quant_map has " + std::to_string(count(q.nested_code)) + " values, not 256");
  if (q.absmax.scalar_type() != at::kByte) bad("a double-quantized absmax must be uint8");
  if (!std::isfinite(q.offset)) bad("nested_offset is not finite");
  finite_nonneg(q.nested_absmax, "nested_absmax");
  if (!q.nested_code.isfinite().all().item<bool>()) bad("nested_quant_map holds non-finite values");
}

}  // namespace nodetune::nn
