// Model: a transformer with its head, held by JavaScript (lib/models/model.ts drives it). Slow calls
// return Promises (RunAsync) and are serialised by a mutex; the model math lives in native/nn.
#pragma once
#include <napi.h>
#include <torch/optim/optimizer.h>

#include <memory>
#include <mutex>

#include "nn/model.h"

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
  Napi::Value LossAndGradients(const Napi::CallbackInfo& info);
  Napi::Value Generate(const Napi::CallbackInfo& info);
  Napi::Value GetParameter(const Napi::CallbackInfo& info);
  Napi::Value SetParameter(const Napi::CallbackInfo& info);

  // The state shared with worker threads (kept alive by each queued call).
  struct State {
    std::mutex busy;
    std::unique_ptr<nn::Model> model;
    std::unique_ptr<torch::optim::Optimizer> optimizer;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

void DefineModel(Napi::Env env, Napi::Object exports);

}  // namespace nodetune::binding
