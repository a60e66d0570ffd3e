// Model: a transformer with its head, held by JavaScript (lib/models/model.ts drives it). Slow calls
// return Promises (RunAsync) and are serialised by a mutex; the model math lives in native/nn.
#pragma once
#include <napi.h>
#include <torch/optim/optimizer.h>

#include <memory>
#include <mutex>

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
};

// [{ name, shape, dtype, trainable }] for a parameter table (the model's, or an adapter's).
Napi::Array ParamsToJs(Napi::Env env, const nn::Params& params);

void DefineModel(Napi::Env env, Napi::Object exports);

}  // namespace nodetune::binding
