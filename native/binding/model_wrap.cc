#include "binding/model_wrap.h"

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>

#include "binding/async.h"
#include "binding/communicator_wrap.h"
#include "binding/convert.h"
#include "binding/errors.h"
#include "binding/tensor_wrap.h"
#include "core/device.h"
#include "core/runtime.h"
#include "io/safetensors.h"
#include "nn/generate.h"
#include "nn/quantized_weight.h"
#include "train/autocast.h"
#include "train/step.h"

namespace nodetune::binding {
namespace {

Napi::Value Field(const Napi::Object& o, const char* key) { return o.Get(key); }

bool Bool(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  return v.ToBoolean().Value();
}

// An optional typed-array option (undefined/null: an undefined tensor), copied.
at::Tensor OptionalTensor(const Napi::Object& o, const char* key, c10::ScalarType dtype) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return at::Tensor();
  return TensorFromJs(v, std::nullopt, dtype, Borrow::kCopy, std::string("generate(): ") + key);
}

std::string Str(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) fail("ERR_ARGUMENT", std::string("native model config: ") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

nn::ModelConfig ConfigFromJs(const Napi::Object& o) {
  nn::ModelConfig c;
  const std::string family = Str(o, "family", "");
  if (family == "gpt2") c.family = nn::Family::kGpt2;
  else if (family == "llama") c.family = nn::Family::kLlama;
  else if (family == "bert") c.family = nn::Family::kBert;
  else if (family == "distilbert") c.family = nn::Family::kDistilBert;
  else if (family == "t5") c.family = nn::Family::kT5;
  else fail("ERR_CONFIG", "native model config: unknown family '" + family + "'");
  const std::string task = Str(o, "task", "");
  if (task == "base") c.task = nn::Task::kBase;
  else if (task == "causal-lm") c.task = nn::Task::kCausalLm;
  else if (task == "sequence-classification") c.task = nn::Task::kSequenceClassification;
  else if (task == "token-classification") c.task = nn::Task::kTokenClassification;
  else if (task == "question-answering") c.task = nn::Task::kQuestionAnswering;
  else if (task == "masked-lm") c.task = nn::Task::kMaskedLm;
  else if (task == "seq2seq-lm") c.task = nn::Task::kSeq2SeqLm;
  else fail("ERR_CONFIG", "native model config: unknown task '" + task + "'");
  c.model_type = Str(o, "modelType", family);
  c.prefix = Str(o, "prefix", "");
  c.vocab_size = Int(o, "vocabSize", 0);
  c.hidden_size = Int(o, "hiddenSize", 0);
  c.num_layers = Int(o, "numLayers", 0);
  c.num_heads = Int(o, "numHeads", 0);
  c.num_kv_heads = Int(o, "numKvHeads", c.num_heads);
  c.head_dim = Int(o, "headDim", c.num_heads ? c.hidden_size / c.num_heads : 0);
  c.intermediate_size = Int(o, "intermediateSize", 0);
  c.max_positions = Int(o, "maxPositions", 0);
  c.type_vocab_size = Int(o, "typeVocabSize", 0);
  c.num_labels = Int(o, "numLabels", 2);
  c.norm_eps = Num(o, "normEps", 1e-5);
  c.act = Str(o, "act", "gelu");
  c.rope_theta = Num(o, "ropeTheta", 10000.0);
  c.rope_type = Str(o, "ropeType", "default");
  c.rope_factor = Num(o, "ropeFactor", 1.0);
  c.rope_low_freq_factor = Num(o, "ropeLowFreqFactor", 1.0);
  c.rope_high_freq_factor = Num(o, "ropeHighFreqFactor", 4.0);
  c.rope_original_max_positions = Int(o, "ropeOriginalMaxPositions", 8192);
  c.sliding_window = Int(o, "slidingWindow", 0);
  c.tie_word_embeddings = Bool(o, "tieWordEmbeddings", true);
  c.qkv_bias = Bool(o, "qkvBias", false);
  c.o_bias = Bool(o, "oBias", false);
  c.mlp_bias = Bool(o, "mlpBias", false);
  c.scale_attn_by_inverse_layer_idx = Bool(o, "scaleAttnByInverseLayerIdx", false);
  c.embd_dropout = Num(o, "embdDropout", 0);
  c.attn_dropout = Num(o, "attnDropout", 0);
  c.resid_dropout = Num(o, "residDropout", 0);
  c.classifier_dropout = Num(o, "classifierDropout", 0);
  c.pad_token_id = Int(o, "padTokenId", -1);
  c.roberta_positions = Bool(o, "robertaPositions", false);
  c.init_range = Num(o, "initRange", 0.02);
  c.num_decoder_layers = Int(o, "numDecoderLayers", c.num_layers);
  c.relative_attention_num_buckets = Int(o, "relativeAttentionNumBuckets", 32);
  c.relative_attention_max_distance = Int(o, "relativeAttentionMaxDistance", 128);
  c.gated_ffn = Bool(o, "gatedFfn", false);
  c.init_factor = Num(o, "initFactor", 1.0);
  c.decoder_start_token_id = Int(o, "decoderStartTokenId", 0);
  c.per_layer_relative_bias = Bool(o, "perLayerRelativeBias", false);
  if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.head_dim <= 0 ||
      c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0)
    fail("ERR_CONFIG", "native model config: sizes must be positive and numHeads a multiple of numKvHeads");
  return c;
}

// An int64 tensor from (typed array or nested array, shape), or undefined for null/undefined.
at::Tensor Ids(const Napi::Value& data, const Napi::Value& shape, const std::string& what) {
  if (data.IsUndefined() || data.IsNull()) return {};
  std::optional<std::vector<int64_t>> s;
  if (!shape.IsUndefined() && !shape.IsNull()) s = ShapeFromJs(shape, what + " shape");
  return TensorFromJs(data, s, std::nullopt, Borrow::kCopy, what).to(at::kLong);
}

// Labels: integer ids as int64; floating values (regression targets) as float32.
at::Tensor LabelsFromJs(const Napi::Value& data, const Napi::Value& shape) {
  if (data.IsUndefined() || data.IsNull()) return {};
  std::optional<std::vector<int64_t>> s;
  if (!shape.IsUndefined() && !shape.IsNull()) s = ShapeFromJs(shape, "labels shape");
  at::Tensor t = TensorFromJs(data, s, std::nullopt, Borrow::kCopy, "labels");
  return t.is_floating_point() ? t.to(at::kFloat) : t.to(at::kLong);
}

nn::Batch BatchFromValues(const Napi::Value& ids, const Napi::Value& shape, const Napi::Value& mask, const Napi::Value& extra) {
  nn::Batch b;
  b.input_ids = Ids(ids, shape, "inputIds");
  b.attention_mask = Ids(mask, shape, "attentionMask");
  if (extra.IsObject() && !extra.IsTypedArray() && !extra.IsArray()) {
    // Encoder-decoder inputs: { decoderInputIds, decoderShape, decoderAttentionMask? } in the token-types slot.
    auto o = extra.As<Napi::Object>();
    b.decoder_input_ids = Ids(o.Get("decoderInputIds"), o.Get("decoderShape"), "decoderInputIds");
    b.decoder_attention_mask = Ids(o.Get("decoderAttentionMask"), o.Get("decoderShape"), "decoderAttentionMask");
    if (b.decoder_input_ids.defined() && b.decoder_input_ids.dim() != 2) fail("ERR_SHAPE", "decoderInputIds must be [batch, length]");
  } else {
    b.token_type_ids = Ids(extra, shape, "tokenTypeIds");
  }
  if (!b.input_ids.defined() || b.input_ids.dim() != 2) fail("ERR_SHAPE", "inputIds must be [batch, length]");
  return b;
}

nn::Batch BatchFromJs(const Napi::CallbackInfo& info, size_t first) {
  return BatchFromValues(info[first], info[first + 1], info[first + 2], info[first + 3]);
}

// An accumulation window: [{ ids, shape, mask, tokenTypes, labels, labelsShape }, ...] (CPU tensors).
std::vector<train::MicroBatch> WindowFromJs(const Napi::Value& value) {
  if (!value.IsArray() || value.As<Napi::Array>().Length() == 0)
    fail("ERR_ARGUMENT", "trainStep(): expected a non-empty array of micro-batches");
  auto list = value.As<Napi::Array>();
  std::vector<train::MicroBatch> window;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value item = list.Get(i);
    if (!item.IsObject()) fail("ERR_ARGUMENT", "trainStep(): micro-batch " + std::to_string(i) + " must be an object");
    auto o = item.As<Napi::Object>();
    train::MicroBatch mb{BatchFromValues(o.Get("ids"), o.Get("shape"), o.Get("mask"), o.Get("tokenTypes")),
                         LabelsFromJs(o.Get("labels"), o.Get("labelsShape"))};
    if (!mb.labels.defined()) fail("ERR_ARGUMENT", "trainStep(): micro-batch " + std::to_string(i) + " has no labels");
    window.push_back(std::move(mb));
  }
  return window;
}

nn::Batch ToDevice(nn::Batch b, const c10::Device& device) {
  b.input_ids = b.input_ids.to(device);
  if (b.attention_mask.defined()) b.attention_mask = b.attention_mask.to(device);
  if (b.token_type_ids.defined()) b.token_type_ids = b.token_type_ids.to(device);
  if (b.decoder_input_ids.defined()) b.decoder_input_ids = b.decoder_input_ids.to(device);
  if (b.decoder_attention_mask.defined()) b.decoder_attention_mask = b.decoder_attention_mask.to(device);
  return b;
}

}  // namespace

double Num(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) fail("ERR_ARGUMENT", std::string("native model config: ") + key + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

int64_t Int(const Napi::Object& o, const char* key, int64_t fallback) { return int64_t(Num(o, key, double(fallback))); }

void ReadSampling(const Napi::Object& o, nn::SamplingOptions& s) {
  s.max_new_tokens = Int(o, "maxNewTokens", 16);
  s.temperature = Num(o, "temperature", 0.0);
  s.top_k = Int(o, "topK", 0);
  s.top_p = Num(o, "topP", 1.0);
  s.repetition_penalty = Num(o, "repetitionPenalty", 1.0);
  s.seed = uint64_t(Num(o, "seed", 0));
}

// The adapter a call names: undefined -> the default, null -> none, a string -> that adapter.
std::string AdapterArg(const Napi::Value& v, const peft::AdapterSet& set) {
  if (v.IsUndefined()) return set.default_name();
  if (v.IsNull()) return "";
  if (!v.IsString()) fail("ERR_ARGUMENT", "adapter must be a string or null");
  return v.As<Napi::String>().Utf8Value();
}

Napi::Function ModelWrap::Define(Napi::Env env) {
  return DefineClass(env, "Model",
                     {
                         InstanceMethod<&ModelWrap::Parameters>("parameters"),
                         InstanceMethod<&ModelWrap::HeadNames>("headNames"),
                         InstanceMethod<&ModelWrap::Load>("load"),
                         InstanceMethod<&ModelWrap::Save>("save"),
                         InstanceMethod<&ModelWrap::Forward>("forward"),
                         InstanceMethod<&ModelWrap::ConfigureOptimizer>("configureOptimizer"),
                         InstanceMethod<&ModelWrap::TrainStep>("trainStep"),
                         InstanceMethod<&ModelWrap::SaveOptimizerState>("saveOptimizerState"),
                         InstanceMethod<&ModelWrap::LoadOptimizerState>("loadOptimizerState"),
                         InstanceMethod<&ModelWrap::SetDropout>("setDropout"),
                         InstanceMethod<&ModelWrap::SetGradientCheckpointing>("setGradientCheckpointing"),
                         InstanceMethod<&ModelWrap::LossScalerState>("lossScalerState"),
                         InstanceMethod<&ModelWrap::SetLossScalerState>("setLossScalerState"),
                         InstanceMethod<&ModelWrap::LossAndGradients>("lossAndGradients"),
                         InstanceMethod<&ModelWrap::Generate>("generate"),
                         InstanceMethod<&ModelWrap::SessionOpen>("sessionOpen"),
                         InstanceMethod<&ModelWrap::SessionAdd>("sessionAdd"),
                         InstanceMethod<&ModelWrap::SessionCancel>("sessionCancel"),
                         InstanceMethod<&ModelWrap::SessionStep>("sessionStep"),
                         InstanceMethod<&ModelWrap::SessionClose>("sessionClose"),
                         InstanceMethod<&ModelWrap::GetParameter>("getParameter"),
                         InstanceMethod<&ModelWrap::SetParameter>("setParameter"),
                         InstanceMethod<&ModelWrap::SetTrainable>("setTrainable"),
                         InstanceMethod<&ModelWrap::AddLora>("addLora"),
                         InstanceMethod<&ModelWrap::AddBottleneck>("addBottleneck"),
                         InstanceMethod<&ModelWrap::AddPrompt>("addPrompt"),
                         InstanceMethod<&ModelWrap::RemoveAdapter>("removeAdapter"),
                         InstanceMethod<&ModelWrap::AdapterParameters>("adapterParameters"),
                         InstanceMethod<&ModelWrap::SetActiveAdapter>("setActiveAdapter"),
                         InstanceMethod<&ModelWrap::MergeAdapter>("mergeAdapter"),
                         InstanceMethod<&ModelWrap::UnmergeAdapter>("unmergeAdapter"),
                         InstanceMethod<&ModelWrap::SaveTensors>("saveTensors"),
                         InstanceMethod<&ModelWrap::LoadTensors>("loadTensors"),
                         InstanceMethod<&ModelWrap::Quantize>("quantize"),
                         InstanceMethod<&ModelWrap::LoadQuantized>("loadQuantized"),
                         InstanceMethod<&ModelWrap::QuantizedBytes>("quantizedBytes"),
                         InstanceMethod<&ModelWrap::QuantizeTiedHead>("quantizeTiedHead"),
                     });
}

void DefineModel(Napi::Env env, Napi::Object exports) { exports.Set("Model", ModelWrap::Define(env)); }

void ModelWrap::Locked(State& state, const std::optional<std::string>& adapter, const std::function<void()>& fn) {
  std::lock_guard<std::mutex> lock(state.busy);
  std::optional<peft::Selection> selection;
  if (adapter) selection.emplace(*state.adapters, *adapter);
  // A bfloat16 model's products run in oneDNN on LibTorch's intra-op threads (one beside OpenBLAS by default):
  // every core for its calls (prefill, batched decoding, forward), as trainStep does for bf16 steps.
  const bool bf16 = state.model && state.model->params().dtype() == at::kBFloat16 && state.model->params().device().is_cpu();
  IntraOpThreads threads(bf16 ? bf16_model_threads() : 0);
  fn();
}

// new Model(config, device, dtype): parameters allocated, not yet initialised (load() does that).
ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    if (!info[0].IsObject()) fail("ERR_ARGUMENT", "new Model(config, device, dtype): config must be an object");
    nn::ModelConfig config = ConfigFromJs(info[0].As<Napi::Object>());
    c10::Device device = parse_device(OptionalString(info[1], "device").value_or("cpu"));
    c10::ScalarType dtype = parse_dtype(OptionalString(info[2], "dtype").value_or("float32"));
    if (dtype != at::kFloat && dtype != at::kHalf && dtype != at::kBFloat16 && dtype != at::kDouble)
      fail("ERR_DTYPE", "model dtype must be float32, float16 or bfloat16");
    state_->model = std::make_unique<nn::Model>(config, dtype, device);
    state_->adapters = std::make_unique<peft::AdapterSet>(&state_->model->training);
    state_->model->params().set_hooks(state_->adapters.get());
  });
}

Napi::Array ParamsToJs(Napi::Env env, const nn::Params& params) {
  Napi::Array out = Napi::Array::New(env, params.names().size());
  uint32_t i = 0;
  for (const auto& name : params.names()) {
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("name", name);
    entry.Set("shape", ShapeToJs(env, params.get(name).sizes()));
    entry.Set("dtype", dtype_name(params.get(name).scalar_type()));
    entry.Set("trainable", params.get(name).requires_grad());
    if (const nn::QuantizedWeight* q = params.quantized(name)) entry.Set("quantized", q->format_name());
    out.Set(i++, entry);
  }
  return out;
}

Napi::Value ModelWrap::Parameters(const Napi::CallbackInfo& info) { return ParamsToJs(info.Env(), state_->model->params()); }

Napi::Value ModelWrap::HeadNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& names = state_->model->head_names();
  Napi::Array out = Napi::Array::New(env, names.size());
  for (uint32_t i = 0; i < names.size(); ++i) out.Set(i, names[i]);
  return out;
}

// load(entries, initialize: string[], seed: number | null) -> Promise<void>
Napi::Value ModelWrap::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!info[0].IsArray() || !info[1].IsArray()) fail("ERR_ARGUMENT", "load(entries, initialize, seed)");
    std::vector<io::TensorEntry> entries;
    auto list = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); ++i) {
      auto o = list.Get(i).As<Napi::Object>();
      io::TensorEntry e;
      e.param = Str(o, "param", "");
      e.file = Str(o, "file", "");
      e.dtype = Str(o, "dtype", "");
      e.shape = ShapeFromJs(Field(o, "shape"), "entry shape");
      e.offset = Int(o, "offset", -1);
      e.length = Int(o, "length", -1);
      entries.push_back(std::move(e));
    }
    std::vector<std::string> init;
    auto names = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < names.Length(); ++i) init.push_back(names.Get(i).As<Napi::String>().Utf8Value());
    const bool seeded = info[2].IsNumber();
    const uint64_t seed = seeded ? uint64_t(info[2].As<Napi::Number>().Int64Value()) : 0;
    return Queue(info, std::nullopt, [=](State& state) {
      if (seeded) at::manual_seed(seed);
      for (const auto& name : init) state.model->initialize(name);
      io::load_tensors(state.model->params(), entries);
    });
  });
}

// save(path, header, names) -> Promise<number> (bytes written)
Napi::Value ModelWrap::Save(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!info[0].IsString() || !info[1].IsString() || !info[2].IsArray()) fail("ERR_ARGUMENT", "save(path, header, names)");
    std::string path = info[0].As<Napi::String>().Utf8Value();
    std::string header = info[1].As<Napi::String>().Utf8Value();
    std::vector<std::string> names;
    auto list = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); ++i) names.push_back(list.Get(i).As<Napi::String>().Utf8Value());
    return Queue(
        info, std::nullopt,
        [=](State& state) -> int64_t { return io::write_safetensors(state.model->params(), path, header, names); },
        [](Napi::Env e, int64_t bytes) -> Napi::Value { return Napi::Number::New(e, double(bytes)); });
  });
}

// forward(ids, shape, mask, tokenTypes) -> Promise<{ data: Float32Array, shape }>
Napi::Value ModelWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    nn::Batch batch = BatchFromJs(info, 0);
    const std::string adapter = AdapterArg(info[4], *state_->adapters);
    return Queue(
        info, adapter,
        [=](State& state) {
          at::NoGradGuard no_grad;
          auto& m = *state.model;
          return m.forward(ToDevice(batch, m.params().device()), nullptr).to(at::kCPU, at::kFloat).contiguous();
        },
        [](Napi::Env e, const at::Tensor& logits) -> Napi::Value {
          Napi::Object out = Napi::Object::New(e);
          out.Set("data", TensorToJs(e, logits));
          out.Set("shape", ShapeToJs(e, logits.sizes()));
          return out;
        });
  });
}

// configureOptimizer({ type, lr, beta1, beta2, eps, weightDecay, momentum })
Napi::Value ModelWrap::ConfigureOptimizer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    if (!info[0].IsObject()) fail("ERR_ARGUMENT", "configureOptimizer(options)");
    auto o = info[0].As<Napi::Object>();
    train::OptimizerConfig c;
    c.type = Str(o, "type", "adamw");
    c.lr = Num(o, "lr", 1e-3);
    c.beta1 = Num(o, "beta1", 0.9);
    c.beta2 = Num(o, "beta2", 0.999);
    c.eps = Num(o, "eps", 1e-8);
    c.weight_decay = Num(o, "weightDecay", 0.0);
    c.momentum = Num(o, "momentum", 0.0);
    std::lock_guard<std::mutex> lock(state_->busy);
    state_->optimizer = train::make_optimizer(state_->trainable(), c);
    state_->optimizer_config = c;
  });
  return env.Undefined();
}

// trainStep(window, lr, maxGradNorm, adapter?, communicator?, skipNonFinite?, precision?, lossScaling?, torchThreads?)
//   -> Promise<{ loss, gradNorm, skipped }>; torchThreads > 0: LibTorch's intra-op threads for this step only.
// window: [{ ids, shape, mask, tokenTypes, labels, labelsShape }, ...], one optimizer step (train/step.h).
Napi::Value ModelWrap::TrainStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!state_->optimizer) fail("ERR_STATE", "trainStep(): call configureOptimizer() first");
    std::vector<train::MicroBatch> window = WindowFromJs(info[0]);
    const double lr = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -1.0;
    const double clip = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : 0.0;
    const std::string adapter = AdapterArg(info[3], *state_->adapters);
    std::shared_ptr<dist::Communicator> comm;
    if (info.Length() > 4 && !info[4].IsUndefined() && !info[4].IsNull()) {
      if (!CommunicatorWrap::IsCommunicator(env, info[4])) fail("ERR_ARGUMENT", "trainStep(): communicator must be a Communicator");
      comm = CommunicatorWrap::CommunicatorOf(info[4]);
    }
    const bool skip_non_finite = info.Length() > 5 && info[5].IsBoolean() && info[5].As<Napi::Boolean>().Value();
    const c10::ScalarType autocast = train::parse_precision(OptionalString(info[6], "trainStep(): precision").value_or("fp32"));
    // Loss scaling: always for float16, or when asked (info[7]).
    const bool scale_loss = autocast == at::kHalf || (info.Length() > 7 && info[7].IsBoolean() && info[7].As<Napi::Boolean>().Value());
    const int torch_threads = info.Length() > 8 && info[8].IsNumber() ? info[8].As<Napi::Number>().Int32Value() : 0;
    return Queue(
        info, adapter,
        [=](State& state) {
          nodetune::IntraOpThreads threads(torch_threads);
          auto& m = *state.model;
          state.scaler.enabled = scale_loss;
          std::vector<train::MicroBatch> on_device = window;
          for (auto& mb : on_device) mb.batch = ToDevice(mb.batch, m.params().device());
          return train::train_step(m, *state.optimizer, on_device, lr, clip, comm.get(), skip_non_finite, autocast,
                                   &state.scaler);
        },
        [](Napi::Env e, const train::StepResult& result) -> Napi::Value {
          Napi::Object out = Napi::Object::New(e);
          out.Set("loss", result.loss);
          out.Set("gradNorm", result.grad_norm);
          out.Set("skipped", result.skipped);
          return out;
        });
  });
}

// lossAndGradients(ids, shape, mask, types, labels, labelsShape, names) -> Promise<{ loss, grads: Tensor[] }>
// (no optimizer step; dropout off) — for gradient checks.
Napi::Value ModelWrap::LossAndGradients(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    nn::Batch batch = BatchFromJs(info, 0);
    at::Tensor labels = LabelsFromJs(info[4], info[5]);
    std::vector<std::string> names;
    auto list = info[6].As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); ++i) names.push_back(list.Get(i).As<Napi::String>().Utf8Value());
    const std::string adapter = AdapterArg(info[7], *state_->adapters);
    struct LossAndGrads {
      double loss = 0;
      std::vector<at::Tensor> grads;
    };
    return Queue(
        info, adapter,
        [=](State& state) {
          LossAndGrads r;
          auto& m = *state.model;
          std::vector<at::Tensor> inputs;
          for (const auto& n : names) inputs.push_back(m.params().get(n));
          at::Tensor l = m.forward_loss(ToDevice(batch, m.params().device()), labels.to(m.params().device()));
          r.loss = l.item<double>();
          if (inputs.empty()) return r;
          auto g = torch::autograd::grad({l}, inputs, {}, false, false, true);
          for (auto& t : g) r.grads.push_back(!t.defined() ? at::Tensor() : t.is_sparse() ? t.to_dense().cpu() : t.detach().cpu());
          return r;
        },
        [](Napi::Env e, const LossAndGrads& r) -> Napi::Value {
          Napi::Object out = Napi::Object::New(e);
          out.Set("loss", r.loss);
          Napi::Array arr = Napi::Array::New(e, r.grads.size());
          for (uint32_t i = 0; i < r.grads.size(); ++i)
            arr.Set(i, r.grads[i].defined() ? Napi::Value(TensorWrap::Wrap(e, r.grads[i])) : e.Null());
          out.Set("grads", arr);
          return out;
        });
  });
}

// generate(ids, shape, mask, options) -> Promise<{ data: Int32Array, shape, lengths?, logprobs?, topIds?, topLogprobs? }>
Napi::Value ModelWrap::Generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    at::Tensor ids = Ids(info[0], info[1], "inputIds");
    at::Tensor mask = Ids(info[2], info[1], "attentionMask");
    if (!ids.defined() || ids.dim() != 2) fail("ERR_SHAPE", "generate(): inputIds must be [batch, length]");
    if (!info[3].IsObject()) fail("ERR_ARGUMENT", "generate(): options must be an object");
    auto o = info[3].As<Napi::Object>();
    nn::GenerateOptions g;
    ReadSampling(o, g);
    g.eos_token_id = Int(o, "eosTokenId", -1);
    g.pad_token_id = Int(o, "padTokenId", -1);
    g.num_beams = Int(o, "numBeams", 1);
    g.length_penalty = Num(o, "lengthPenalty", 1.0);
    if (g.num_beams < 1) fail("ERR_ARGUMENT", "generate(): numBeams must be >= 1");
    g.presence_penalty = OptionalTensor(o, "presencePenalty", at::kFloat);
    g.frequency_penalty = OptionalTensor(o, "frequencyPenalty", at::kFloat);
    g.penalty_context = OptionalTensor(o, "penaltyContext", at::kInt);
    at::Tensor bias_index = OptionalTensor(o, "logitBiasIndex", at::kInt);
    if (bias_index.defined()) g.logit_bias_index = bias_index.to(at::kLong).view({-1, 2});
    g.logit_bias_value = OptionalTensor(o, "logitBiasValue", at::kFloat);
    g.logprobs = Int(o, "logprobs", -1);
    const std::string adapter = AdapterArg(info[4], *state_->adapters);
    struct Output {
      at::Tensor data, lengths;
      nn::Generated detail;
    };
    return Queue(
        info, adapter,
        [=](State& state) {
          Output r;
          if (state.model->config().task != nn::Task::kSeq2SeqLm) {
            r.detail = nn::generate_detailed(*state.model, ids, mask, g);
            r.data = r.detail.sequences.contiguous();
            return r;
          }
          // Encoder-decoder rows differ in length: [B, longest] zero-filled plus each row's length.
          auto rows = nn::generate_seq2seq(*state.model, ids, mask, g);
          size_t longest = 0;
          for (const auto& row : rows) longest = std::max(longest, row.size());
          r.data = at::zeros({int64_t(rows.size()), int64_t(longest)}, at::kLong);
          r.lengths = at::empty({int64_t(rows.size())}, at::kLong);
          for (size_t i = 0; i < rows.size(); ++i) {
            r.lengths[int64_t(i)] = int64_t(rows[i].size());
            if (!rows[i].empty()) r.data[int64_t(i)].narrow(0, 0, int64_t(rows[i].size())).copy_(at::tensor(rows[i], at::kLong));
          }
          return r;
        },
        [](Napi::Env e, const Output& r) -> Napi::Value {
          Napi::Object out = Napi::Object::New(e);
          out.Set("data", TensorToJs(e, r.data.to(at::kInt)));
          out.Set("shape", ShapeToJs(e, r.data.sizes()));
          if (r.lengths.defined()) out.Set("lengths", TensorToJs(e, r.lengths.to(at::kInt)));
          if (r.detail.logprobs.defined()) {
            out.Set("logprobs", TensorToJs(e, r.detail.logprobs.contiguous()));
            out.Set("topIds", TensorToJs(e, r.detail.top_ids.to(at::kInt).contiguous()));
            out.Set("topLogprobs", TensorToJs(e, r.detail.top_logprobs.contiguous()));
          }
          return out;
        });
  });
}

// getParameter(name, adapter?) -> Tensor (a detached CPU copy; of the adapter's table when named)
Napi::Value ModelWrap::GetParameter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    std::string name = info[0].As<Napi::String>().Utf8Value();
    std::lock_guard<std::mutex> lock(state_->busy);
    const nn::Params& table = info[1].IsString() ? state_->adapters->get(info[1].As<Napi::String>().Utf8Value()).params
                                                 : state_->model->params();
    return TensorWrap::Wrap(env, table.values(name).detach().to(at::kCPU).clone());
  });
}

// setParameter(name, tensor): copies the values in (shape must match).
Napi::Value ModelWrap::SetParameter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    std::string name = info[0].As<Napi::String>().Utf8Value();
    if (!TensorWrap::IsTensor(env, info[1])) fail("ERR_ARGUMENT", "setParameter(name, tensor): tensor must be a Tensor");
    at::Tensor src = TensorWrap::TensorOf(info[1]);
    std::lock_guard<std::mutex> lock(state_->busy);
    auto& params = state_->model->params();
    at::Tensor p = params.get(name);
    if (src.sizes() != p.sizes()) fail("ERR_SHAPE", "setParameter(" + name + "): shape " + c10::str(src.sizes()) + " != " + c10::str(p.sizes()));
    at::NoGradGuard no_grad;
    if (const nn::QuantizedWeight* q = params.quantized(name))  // new values, quantized as at load
      params.set_quantized(name, nn::quantize_weight(src, q->format, q->transposed, params.device()));
    else
      p.copy_(src);
  });
  return env.Undefined();
}

}  // namespace nodetune::binding
