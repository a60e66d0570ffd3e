// Model: a transformer with its head, held by JavaScript (lib/models/model.ts drives it). Slow calls
// return Promises (RunAsync) and are serialised by a mutex; the model math lives in native/nn.
#pragma once
#include <napi.h>
#include <torch/optim/optimizer.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "binding/async.h"

#include "nn/generation_session.h"
#include "io/safetensors.h"
#include "nn/model.h"
#include "train/loss_scaler.h"
#include "peft/adapters.h"
#include "train/step.h"

namespace nodetune::binding {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit ModelWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Parameters(const Napi::CallbackInfo& info);
  Napi::Value HeadNames(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value ConfigureOptimizer(const Napi::CallbackInfo& info);
  Napi::Value TrainStep(const Napi::CallbackInfo& info);
  // Training settings (model_wrap_train.cc).
  Napi::Value SaveOptimizerState(const Napi::CallbackInfo& info);
  Napi::Value LoadOptimizerState(const Napi::CallbackInfo& info);
  Napi::Value SetDropout(const Napi::CallbackInfo& info);
  Napi::Value SetGradientCheckpointing(const Napi::CallbackInfo& info);
  Napi::Value LossScalerState(const Napi::CallbackInfo& info);
  Napi::Value SetLossScalerState(const Napi::CallbackInfo& info);
  Napi::Value LossAndGradients(const Napi::CallbackInfo& info);
  Napi::Value Generate(const Napi::CallbackInfo& info);
  // Generation sessions (model_wrap_session.cc): continuous batching over nn::GenerationSession.
  Napi::Value SessionOpen(const Napi::CallbackInfo& info);
  Napi::Value SessionAdd(const Napi::CallbackInfo& info);
  Napi::Value SessionCancel(const Napi::CallbackInfo& info);
  Napi::Value SessionStep(const Napi::CallbackInfo& info);
  Napi::Value SessionClose(const Napi::CallbackInfo& info);
  Napi::Value GetParameter(const Napi::CallbackInfo& info);
  Napi::Value SetParameter(const Napi::CallbackInfo& info);
  // Fine-tuning methods (model_wrap_peft.cc).
  Napi::Value SetTrainable(const Napi::CallbackInfo& info);
  Napi::Value AddLora(const Napi::CallbackInfo& info);
  Napi::Value AddBottleneck(const Napi::CallbackInfo& info);
  Napi::Value AddPrompt(const Napi::CallbackInfo& info);
  Napi::Value RemoveAdapter(const Napi::CallbackInfo& info);
  Napi::Value AdapterParameters(const Napi::CallbackInfo& info);
  Napi::Value SetActiveAdapter(const Napi::CallbackInfo& info);
  Napi::Value MergeAdapter(const Napi::CallbackInfo& info);
  Napi::Value UnmergeAdapter(const Napi::CallbackInfo& info);
  Napi::Value SaveTensors(const Napi::CallbackInfo& info);
  Napi::Value LoadTensors(const Napi::CallbackInfo& info);
  // Quantized frozen base weights (model_wrap_quant.cc).
  Napi::Value Quantize(const Napi::CallbackInfo& info);
  Napi::Value LoadQuantized(const Napi::CallbackInfo& info);
  Napi::Value QuantizedBytes(const Napi::CallbackInfo& info);
  Napi::Value QuantizeTiedHead(const Napi::CallbackInfo& info);

  // The state shared with worker threads (kept alive by each queued call).
  struct State {
    std::mutex busy;
    std::unique_ptr<nn::Model> model;
    std::unique_ptr<torch::optim::Optimizer> optimizer;
    train::OptimizerConfig optimizer_config;
    std::unique_ptr<peft::AdapterSet> adapters;
    // Dynamic loss scaling (float16 training, or asked for): its state lives across steps and in checkpoints.
    train::LossScaler scaler;
    // The base parameters that train plus every adapter parameter (the optimizer's set).
    std::vector<at::Tensor> trainable() const;
    // After trainability changed: a configured optimizer is rebuilt over the new set (fresh state).
    void rebuild_optimizer();
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
  // Open generation sessions by handle (touched on the JavaScript thread only; a step in flight keeps its own).
  std::map<int64_t, std::shared_ptr<nn::GenerationSession>> sessions_;
  int64_t next_session_ = 1;
  std::shared_ptr<nn::GenerationSession> SessionArg(const Napi::Value& handle);

  // Every slow call has one shape: its arguments are validated and copied on the JavaScript thread (by the
  // method), then `work(state)` runs on the compute thread under the model's lock, with `adapter` selected
  // when one is given, and `settle(env, result)` builds the resolved value back on the JavaScript thread from
  // what `work` returned (`settle(env)` when it returns nothing; no `settle`: resolves undefined). The wrapped
  // object stays referenced until the Promise settles.
  template <typename Work, typename Settle>
  Napi::Value Queue(const Napi::CallbackInfo& info, std::optional<std::string> adapter, Work work, Settle settle);
  template <typename Work>
  Napi::Value Queue(const Napi::CallbackInfo& info, std::optional<std::string> adapter, Work work) {
    return Queue(info, std::move(adapter), std::move(work), [](Napi::Env e) -> Napi::Value { return e.Undefined(); });
  }
  // Runs `fn` holding the model's lock, with `adapter` selected when given (compute thread).
  static void Locked(State& state, const std::optional<std::string>& adapter, const std::function<void()>& fn);
};

template <typename Work, typename Settle>
Napi::Value ModelWrap::Queue(const Napi::CallbackInfo& info, std::optional<std::string> adapter, Work work,
                             Settle settle) {
  using Result = std::invoke_result_t<Work&, State&>;
  auto state = state_;
  if constexpr (std::is_void_v<Result>) {
    return RunAsync(
        info.Env(), {info.This()},
        [state, adapter = std::move(adapter), work = std::move(work)]() mutable {
          Locked(*state, adapter, [&] { work(*state); });
        },
        [settle = std::move(settle)](Napi::Env e) -> Napi::Value { return settle(e); });
  } else {
    auto result = std::make_shared<Result>();
    return RunAsync(
        info.Env(), {info.This()},
        [state, result, adapter = std::move(adapter), work = std::move(work)]() mutable {
          Locked(*state, adapter, [&] { *result = work(*state); });
        },
        [result, settle = std::move(settle)](Napi::Env e) -> Napi::Value { return settle(e, *result); });
  }
}

// Option readers shared by the model's methods: a number field (undefined/null: the fallback), as an integer.
double Num(const Napi::Object& o, const char* key, double fallback);
int64_t Int(const Napi::Object& o, const char* key, int64_t fallback);
// maxNewTokens, temperature, topK, topP, repetitionPenalty and seed of an options object.
void ReadSampling(const Napi::Object& o, nn::SamplingOptions& s);
// The adapter a call names: undefined -> the default, null -> none, a string -> that adapter.
std::string AdapterArg(const Napi::Value& v, const peft::AdapterSet& set);
// { <nameKey>, file, dtype, shape, offset, length }: one tensor of a safetensors file (model_wrap_peft.cc).
io::TensorEntry TensorEntryFromJs(const Napi::Object& o, const char* name_key);

// [{ name, shape, dtype, trainable }] for a parameter table (the model's, or an adapter's).
Napi::Array ParamsToJs(Napi::Env env, const nn::Params& params);

void DefineModel(Napi::Env env, Napi::Object exports);

}  // namespace nodetune::binding
