// Tensor: a LibTorch tensor held by a JavaScript object (inputs and outputs of native calls, and the
// bridge's own tests). Construction copies; data() hands out a zero-copy view of CPU tensors.
#pragma once
#include <ATen/ATen.h>
#include <napi.h>

#include <memory>
#include <mutex>

namespace nodetune::binding {

class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  // A new JS Tensor holding `tensor`.
  static Napi::Object Wrap(Napi::Env env, at::Tensor tensor);
  static bool IsTensor(Napi::Env env, const Napi::Value& value);
  static at::Tensor TensorOf(const Napi::Value& value);

  explicit TensorWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Data(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value Matmul(const Napi::CallbackInfo& info);

  at::Tensor tensor_;
  std::shared_ptr<std::mutex> busy_ = std::make_shared<std::mutex>();  // serialises async calls
};

}  // namespace nodetune::binding
