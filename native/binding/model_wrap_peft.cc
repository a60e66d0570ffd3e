// ModelWrap's fine-tuning methods: trainability, adapters (create, select, merge), and adapter files'
// tensors in and out. The math is in native/peft; this file converts arguments and takes the lock.
#include <ATen/ATen.h>

#include "binding/async.h"
#include "binding/convert.h"
#include "binding/errors.h"
#include "binding/model_wrap.h"
#include "core/device.h"
#include "io/safetensors.h"
#include "nn/quantized_weight.h"

namespace nodetune::binding {
namespace {

std::string StrArg(const Napi::Value& v, const std::string& what) { return StringArg(v, what); }

double NumField(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) fail("ERR_ARGUMENT", std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

std::vector<std::string> Strings(const Napi::Value& v, const std::string& what) { return StringsArg(v, what); }

Napi::Object Obj(const Napi::Value& v, const std::string& what) {
  if (!v.IsObject()) fail("ERR_ARGUMENT", what + " must be an object");
  return v.As<Napi::Object>();
}

void Seed(const Napi::Object& o) {
  Napi::Value s = o.Get("seed");
  if (s.IsNumber()) at::manual_seed(uint64_t(s.As<Napi::Number>().Int64Value()));
}

// The table a tensor of an adapter file lives in: an adapter's (by name) or the base model's (null).
const nn::Params& Table(nn::Model& model, peft::AdapterSet& set, const std::string& adapter) {
  return adapter.empty() ? model.params() : set.get(adapter).params;
}

}  // namespace

io::TensorEntry TensorEntryFromJs(const Napi::Object& o, const char* name_key) {
  io::TensorEntry e;
  e.param = StrArg(o.Get(name_key), std::string("entry.") + name_key);
  e.file = StrArg(o.Get("file"), "entry.file");
  e.dtype = StrArg(o.Get("dtype"), "entry.dtype");
  e.shape = ShapeFromJs(o.Get("shape"), "entry shape");
  e.offset = int64_t(NumField(o, "offset", -1));
  e.length = int64_t(NumField(o, "length", -1));
  return e;
}

std::vector<at::Tensor> ModelWrap::State::trainable() const {
  std::vector<at::Tensor> out;
  for (const auto& t : model->params().tensors())
    if (t.requires_grad()) out.push_back(t);
  for (const auto& t : adapters->tensors())
    if (t.requires_grad()) out.push_back(t);
  return out;
}

void ModelWrap::State::rebuild_optimizer() {
  if (!optimizer) return;
  std::vector<at::Tensor> params = trainable();
  if (params.empty()) optimizer.reset();
  else optimizer = train::make_optimizer(params, optimizer_config);
}

// setTrainable(names, trainable): requires_grad of the named base parameters.
Napi::Value ModelWrap::SetTrainable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    std::vector<std::string> names = Strings(info[0], "setTrainable(names)");
    const bool flag = info[1].ToBoolean().Value();
    std::lock_guard<std::mutex> lock(state_->busy);
    auto& params = state_->model->params();
    for (const auto& n : names) {  // every name checked before any change
      params.get(n);
      if (flag && params.quantized(n))
        fail("ERR_STATE", "setTrainable(): " + n + " is quantized (" + params.quantized(n)->format_name() +
                              "): a quantized base stays frozen; train adapters (LoRA) on it, or load the model without quantize for full fine-tuning");
    }
    for (const auto& n : names) {
      at::Tensor t = params.get(n);
      t.set_requires_grad(flag);
    }
    state_->rebuild_optimizer();
  });
  return env.Undefined();
}

// addLora(name, { r, scale, dropout, seed, targets: [{ module, inFeatures, outFeatures, fanInFanOut }] })
Napi::Value ModelWrap::AddLora(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    const std::string name = StrArg(info[0], "addLora(name)");
    auto o = Obj(info[1], "addLora(options)");
    std::vector<peft::LoraTarget> targets;
    auto list = o.Get("targets");
    if (!list.IsArray()) fail("ERR_ARGUMENT", "addLora(): targets must be an array");
    auto arr = list.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      auto t = Obj(arr.Get(i), "addLora(): target");
      peft::LoraTarget lt;
      lt.module = StrArg(t.Get("module"), "target.module");
      lt.in_features = int64_t(NumField(t, "inFeatures", 0));
      lt.out_features = int64_t(NumField(t, "outFeatures", 0));
      lt.fan_in_fan_out = t.Get("fanInFanOut").ToBoolean().Value();
      targets.push_back(lt);
    }
    std::lock_guard<std::mutex> lock(state_->busy);
    Seed(o);
    state_->adapters->add_lora(name, state_->model->params(), int64_t(NumField(o, "r", 0)), NumField(o, "scale", 1.0),
                               NumField(o, "dropout", 0.0), targets);
    state_->rebuild_optimizer();
  });
  return env.Undefined();
}

// addBottleneck(name, { size, act, seed, sites })
Napi::Value ModelWrap::AddBottleneck(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    const std::string name = StrArg(info[0], "addBottleneck(name)");
    auto o = Obj(info[1], "addBottleneck(options)");
    std::vector<std::string> sites = Strings(o.Get("sites"), "addBottleneck(): sites");
    const std::string act = StrArg(o.Get("act"), "addBottleneck(): act");
    std::lock_guard<std::mutex> lock(state_->busy);
    Seed(o);
    state_->adapters->add_bottleneck(name, state_->model->params(), state_->model->config().hidden_size,
                                     int64_t(NumField(o, "size", 0)), act, sites);
    state_->rebuild_optimizer();
  });
  return env.Undefined();
}

// addPrompt(name, { numVirtualTokens, embedding, ids, seed })
Napi::Value ModelWrap::AddPrompt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    const std::string name = StrArg(info[0], "addPrompt(name)");
    auto o = Obj(info[1], "addPrompt(options)");
    const std::string embedding = StrArg(o.Get("embedding"), "addPrompt(): embedding");
    std::vector<int64_t> ids;
    Napi::Value v = o.Get("ids");
    if (v.IsArray()) {
      auto a = v.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) ids.push_back(a.Get(i).As<Napi::Number>().Int64Value());
    }
    std::lock_guard<std::mutex> lock(state_->busy);
    Seed(o);
    const auto& params = state_->model->params();
    state_->adapters->add_prompt(name, params, params.get(embedding), int64_t(NumField(o, "numVirtualTokens", 0)), ids);
    state_->rebuild_optimizer();
  });
  return env.Undefined();
}

Napi::Value ModelWrap::RemoveAdapter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    const std::string name = StrArg(info[0], "removeAdapter(name)");
    std::lock_guard<std::mutex> lock(state_->busy);
    state_->adapters->remove(name);
    state_->rebuild_optimizer();
  });
  return env.Undefined();
}

// adapterParameters(name) -> [{ name, shape, dtype, trainable }]
Napi::Value ModelWrap::AdapterParameters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const std::string name = StrArg(info[0], "adapterParameters(name)");
    std::lock_guard<std::mutex> lock(state_->busy);
    return ParamsToJs(env, state_->adapters->get(name).params);
  });
}

// setActiveAdapter(name | null): the adapter used when a call names none.
Napi::Value ModelWrap::SetActiveAdapter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    const std::string name = info[0].IsNull() || info[0].IsUndefined() ? "" : StrArg(info[0], "setActiveAdapter(name)");
    std::lock_guard<std::mutex> lock(state_->busy);
    state_->adapters->set_default(name);
    state_->rebuild_optimizer();
  });
  return env.Undefined();
}

Napi::Value ModelWrap::MergeAdapter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    const std::string name = StrArg(info[0], "mergeAdapter(name)");
    std::lock_guard<std::mutex> lock(state_->busy);
    state_->adapters->merge(name, state_->model->params());
  });
  return env.Undefined();
}

Napi::Value ModelWrap::UnmergeAdapter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Guard(env, [&] {
    std::lock_guard<std::mutex> lock(state_->busy);
    state_->adapters->unmerge(state_->model->params());
  });
  return env.Undefined();
}

// saveTensors(path, header, items: [{ adapter: string | null, param }]) -> Promise<number>: one safetensors
// file holding tensors of adapters and of the base model, in `items` order.
Napi::Value ModelWrap::SaveTensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    const std::string path = StrArg(info[0], "saveTensors(path)");
    const std::string header = StrArg(info[1], "saveTensors(header)");
    if (!info[2].IsArray()) fail("ERR_ARGUMENT", "saveTensors(items)");
    std::vector<std::pair<std::string, std::string>> items;
    auto arr = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      auto o = Obj(arr.Get(i), "saveTensors(): item");
      items.emplace_back(o.Get("adapter").IsString() ? o.Get("adapter").As<Napi::String>().Utf8Value() : "",
                         StrArg(o.Get("param"), "item.param"));
    }
    return Queue(
        info, std::nullopt,
        [=](State& state) -> int64_t {
          nn::Params view(state.model->params().dtype(), state.model->params().device());
          std::vector<std::string> names;
          for (size_t i = 0; i < items.size(); ++i) {
            const std::string key = std::to_string(i);
            view.adopt(key, Table(*state.model, *state.adapters, items[i].first).get(items[i].second));
            names.push_back(key);
          }
          return io::write_safetensors(view, path, header, names);
        },
        [](Napi::Env e, int64_t bytes) -> Napi::Value { return Napi::Number::New(e, double(bytes)); });
  });
}

// loadTensors(entries: [{ adapter: string | null, param, file, dtype, shape, offset, length }]) -> Promise<void>
Napi::Value ModelWrap::LoadTensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!info[0].IsArray()) fail("ERR_ARGUMENT", "loadTensors(entries)");
    std::vector<io::TensorEntry> entries;
    std::vector<std::string> tables;
    auto arr = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      auto o = Obj(arr.Get(i), "loadTensors(): entry");
      io::TensorEntry e = TensorEntryFromJs(o, "param");
      tables.push_back(o.Get("adapter").IsString() ? o.Get("adapter").As<Napi::String>().Utf8Value() : "");
      entries.push_back(std::move(e));
    }
    return Queue(info, std::nullopt, [=](State& state) mutable {
      nn::Params view(state.model->params().dtype(), state.model->params().device());
      for (size_t i = 0; i < entries.size(); ++i) {
        const std::string key = std::to_string(i);
        view.adopt(key, Table(*state.model, *state.adapters, tables[i]).get(entries[i].param));
        entries[i].param = key;
      }
      io::load_tensors(view, entries);
    });
  });
}

}  // namespace nodetune::binding
