// Communicator: a process's membership in a training group (native/dist), held by JavaScript. Joining and
// every collective run off the event loop.
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <mutex>

#include "dist/communicator.h"

namespace nodetune::binding {

class CommunicatorWrap : public Napi::ObjectWrap<CommunicatorWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  static bool IsCommunicator(Napi::Env env, const Napi::Value& value);
  static std::shared_ptr<dist::Communicator> CommunicatorOf(const Napi::Value& value);
  explicit CommunicatorWrap(const Napi::CallbackInfo& info);

 private:
  static Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value Rank(const Napi::CallbackInfo& info);
  Napi::Value WorldSize(const Napi::CallbackInfo& info);
  Napi::Value AllReduce(const Napi::CallbackInfo& info);
  Napi::Value Broadcast(const Napi::CallbackInfo& info);
  Napi::Value Barrier(const Napi::CallbackInfo& info);
  Napi::Value Collective(Napi::Env env, const std::vector<Napi::Value>& keep, std::function<void(dist::Communicator&)> run);

  std::shared_ptr<dist::Communicator> comm_;
  std::shared_ptr<std::mutex> busy_ = std::make_shared<std::mutex>();
};

void DefineCommunicator(Napi::Env env, Napi::Object exports);

}  // namespace nodetune::binding
