// ModelWrap's quantized base: which linear weights stay quantized (before load), and weights a checkpoint holds
// already quantized (bitsandbytes' layout). The formats and the math are in native/nn/quantized_weight.h.
#include <ATen/ATen.h>

#include <algorithm>

#include "binding/async.h"
#include "binding/convert.h"
#include "binding/errors.h"
#include "binding/model_wrap.h"
#include "io/safetensors.h"
#include "nn/quantized_weight.h"

namespace nodetune::binding {
namespace {

double Number(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) fail("ERR_ARGUMENT", std::string("loadQuantized(): ") + key + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// One quantized weight of a checkpoint: its parts by role (weight, SCB | absmax, quant_map, nested_*).
struct QuantizedItem {
  std::string param;
  nn::QuantFormat format = nn::QuantFormat::kInt8;
  int64_t blocksize = 64, nested_blocksize = 256;
  double offset = 0.0;
  std::vector<std::string> roles;
  std::vector<io::TensorEntry> parts;
};

// The weight from its parts (CPU), before any check.
std::shared_ptr<nn::QuantizedWeight> Assemble(const QuantizedItem& item, const std::vector<at::Tensor>& tensors,
                                              const at::Tensor& placeholder) {
  auto q = std::make_shared<nn::QuantizedWeight>();
  q->format = item.format;
  q->rows = placeholder.size(0);
  q->cols = placeholder.size(1);
  for (size_t i = 0; i < item.roles.size(); ++i) {
    const std::string& role = item.roles[i];
    at::Tensor t = tensors[i].reshape({-1});
    if (role == "weight") (item.format == nn::QuantFormat::kInt8 ? q->data : q->packed) = t;
    else if (role == "SCB") q->scale = t.to(at::kFloat) / 127.0;
    else if (role == "absmax") q->absmax = t.scalar_type() == at::kByte ? t : t.to(at::kFloat);
    else if (role == "quant_map") q->code = t.to(at::kFloat);
    else if (role == "nested_absmax") q->nested_absmax = t.to(at::kFloat);
    else if (role == "nested_quant_map") q->nested_code = t.to(at::kFloat);
    else fail("ERR_ARGUMENT", "loadQuantized(): unknown part '" + role + "' of " + item.param);
  }
  if (q->data.defined() && q->data.numel() == q->numel()) q->data = q->data.view({q->rows, q->cols});
  q->blocksize = item.blocksize;
  q->nested_blocksize = item.nested_blocksize;
  q->offset = item.offset;
  return q;
}

}  // namespace

// quantize(names, format, transposed): these frozen linear weights are kept quantized from now on; load() (or
// initialisation) quantizes their values tensor by tensor. `transposed`: the names stored [in, out] (Conv1D).
Napi::Value ModelWrap::Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    std::vector<std::string> names = StringsArg(info[0], "quantize(names)");
    const nn::QuantFormat format = nn::parse_quant_format(StringArg(info[1], "quantize(format)"));
    std::vector<std::string> transposed = info[2].IsUndefined() ? std::vector<std::string>{} : StringsArg(info[2], "quantize(transposed)");
    std::lock_guard<std::mutex> lock(state_->busy);
    auto& params = state_->model->params();
    for (const auto& n : names)
      if (params.get(n).dim() != 2) fail("ERR_ARGUMENT", "quantize(): " + n + " is not a 2-D linear weight");
    for (const auto& n : names) {
      const at::Tensor& p = params.get(n);
      const bool t = std::find(transposed.begin(), transposed.end(), n) != transposed.end();
      auto q = std::make_shared<nn::QuantizedWeight>();
      q->format = format;
      q->transposed = t;
      q->rows = t ? p.size(1) : p.size(0);
      q->cols = t ? p.size(0) : p.size(1);
      params.set_quantized(n, q);
    }
    state_->rebuild_optimizer();
  });
  return env.Undefined();
}

// loadQuantized(items: [{ param, format, blocksize?, nestedBlocksize?, offset?, parts: [{ role, file, dtype, shape,
// offset, length }] }]) -> Promise<void>: weights stored quantized (bitsandbytes), checked, then kept as they are.
Napi::Value ModelWrap::LoadQuantized(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!info[0].IsArray()) fail("ERR_ARGUMENT", "loadQuantized(items)");
    std::vector<QuantizedItem> items;
    auto arr = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      if (!arr.Get(i).IsObject()) fail("ERR_ARGUMENT", "loadQuantized(): items must be objects");
      auto o = arr.Get(i).As<Napi::Object>();
      QuantizedItem item;
      item.param = StringArg(o.Get("param"), "item.param");
      item.format = nn::parse_quant_format(StringArg(o.Get("format"), "item.format"));
      item.blocksize = int64_t(Number(o, "blocksize", 64));
      item.nested_blocksize = int64_t(Number(o, "nestedBlocksize", 256));
      item.offset = Number(o, "offset", 0.0);
      if (!o.Get("parts").IsArray()) fail("ERR_ARGUMENT", "loadQuantized(): item.parts must be an array");
      auto parts = o.Get("parts").As<Napi::Array>();
      for (uint32_t j = 0; j < parts.Length(); ++j) {
        if (!parts.Get(j).IsObject()) fail("ERR_ARGUMENT", "loadQuantized(): parts must be objects");
        auto p = parts.Get(j).As<Napi::Object>();
        item.roles.push_back(StringArg(p.Get("role"), "part.role"));
        item.parts.push_back(TensorEntryFromJs(p, "name"));
      }
      items.push_back(std::move(item));
    }
    return Queue(info, std::nullopt, [items = std::move(items)](State& state) {
      auto& params = state.model->params();
      std::vector<std::shared_ptr<nn::QuantizedWeight>> weights;
      for (const auto& item : items) {  // every weight checked before any is set
        const at::Tensor& placeholder = params.get(item.param);
        if (placeholder.dim() != 2) fail("ERR_CHECKPOINT", "quantized tensor " + item.param + " is not a 2-D linear weight");
        auto q = Assemble(item, io::read_tensors(item.parts), placeholder);
        nn::check_quantized(*q, item.param);
        weights.push_back(q);
      }
      for (size_t i = 0; i < items.size(); ++i)
        params.set_quantized(items[i].param, params.device().is_cpu() ? weights[i] : weights[i]->to(params.device()));
    });
  });
}

// quantizedBytes() -> number: bytes held by the quantized weights (the LM head's quantized copy included).
Napi::Value ModelWrap::QuantizedBytes(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(state_->busy);
  const auto& params = state_->model->params();
  double total = 0;
  for (const auto& n : params.names())
    if (const nn::QuantizedWeight* q = params.quantized(n)) total += double(q->nbytes());
  if (!params.has("lm_head.weight"))
    if (const nn::QuantizedWeight* q = params.quantized("lm_head.weight")) total += double(q->nbytes());
  return Napi::Number::New(info.Env(), total);
}

// quantizeTiedHead(format): the LM head of a model with tied embeddings multiplies by a quantized copy of them
// (the embedding lookup keeps the table as it is); for decoding, where the head is a large share of the bytes read.
Napi::Value ModelWrap::QuantizeTiedHead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    const nn::QuantFormat format = nn::parse_quant_format(StringArg(info[0], "quantizeTiedHead(format)"));
    std::lock_guard<std::mutex> lock(state_->busy);
    auto& model = *state_->model;
    if (!model.config().tie_word_embeddings) fail("ERR_STATE", "quantizeTiedHead(): the model's LM head is not tied");
    auto& params = model.params();
    params.set_quantized_extra("lm_head.weight", nn::quantize_weight(model.lm_head_weight().detach(), format, false, params.device()));
  });
  return env.Undefined();
}

}  // namespace nodetune::binding
