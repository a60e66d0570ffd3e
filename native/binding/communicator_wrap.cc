#include "binding/communicator_wrap.h"

#include "binding/addon_data.h"
#include "binding/async.h"
#include "binding/errors.h"
#include "binding/tensor_wrap.h"

namespace nodetune::binding {
namespace {


int IntField(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) fail("ERR_ARGUMENT", std::string("Communicator.connect(): ") + key + " must be a number");
  return v.As<Napi::Number>().Int32Value();
}

std::vector<at::Tensor> TensorList(Napi::Env env, const Napi::Value& value, const char* what) {
  if (!value.IsArray()) fail("ERR_ARGUMENT", std::string(what) + ": expected an array of Tensors");
  auto array = value.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value t = array.Get(i);
    if (!TensorWrap::IsTensor(env, t)) fail("ERR_ARGUMENT", std::string(what) + ": element " + std::to_string(i) + " is not a Tensor");
    out.push_back(TensorWrap::TensorOf(t));
  }
  return out;
}

}  // namespace

Napi::Function CommunicatorWrap::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Communicator",
                                    {
                                        StaticMethod<&CommunicatorWrap::Connect>("connect"),
                                        InstanceAccessor<&CommunicatorWrap::Rank>("rank"),
                                        InstanceAccessor<&CommunicatorWrap::WorldSize>("worldSize"),
                                        InstanceMethod<&CommunicatorWrap::AllReduce>("allReduce"),
                                        InstanceMethod<&CommunicatorWrap::Broadcast>("broadcast"),
                                        InstanceMethod<&CommunicatorWrap::Barrier>("barrier"),
                                    });
  GetAddonData(env).communicator_class = Napi::Persistent(ctor);
  return ctor;
}

bool CommunicatorWrap::IsCommunicator(Napi::Env env, const Napi::Value& value) {
  return value.IsObject() && value.As<Napi::Object>().InstanceOf(GetAddonData(env).communicator_class.Value());
}

std::shared_ptr<dist::Communicator> CommunicatorWrap::CommunicatorOf(const Napi::Value& value) {
  return Napi::ObjectWrap<CommunicatorWrap>::Unwrap(value.As<Napi::Object>())->comm_;
}

// Only Connect() constructs (with an External holding the joined communicator).
CommunicatorWrap::CommunicatorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CommunicatorWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw MakeError(info.Env(), "ERR_ARGUMENT", "use Communicator.connect({ masterAddr, port, rank, worldSize, timeoutMs })");
  comm_ = *info[0].As<Napi::External<std::shared_ptr<dist::Communicator>>>().Data();
}

// Communicator.connect({ masterAddr, port, rank, worldSize, timeoutMs }) -> Promise<Communicator>
Napi::Value CommunicatorWrap::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!info[0].IsObject()) fail("ERR_ARGUMENT", "Communicator.connect(options): options must be an object");
    auto o = info[0].As<Napi::Object>();
    dist::RendezvousOptions opts;
    if (!o.Get("masterAddr").IsString()) fail("ERR_ARGUMENT", "Communicator.connect(): masterAddr must be a string");
    opts.master_addr = o.Get("masterAddr").As<Napi::String>().Utf8Value();
    opts.port = IntField(o, "port");
    opts.rank = IntField(o, "rank");
    opts.world_size = IntField(o, "worldSize");
    opts.timeout = std::chrono::milliseconds(IntField(o, "timeoutMs"));
    auto made = std::make_shared<std::shared_ptr<dist::Communicator>>();
    return RunAsync(
        env, {}, [=] { *made = std::make_shared<dist::Communicator>(opts); },
        [=](Napi::Env e) -> Napi::Value {
          return GetAddonData(e).communicator_class.New({Napi::External<std::shared_ptr<dist::Communicator>>::New(e, made.get())});
        });
  });
}

Napi::Value CommunicatorWrap::Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), comm_->rank()); }

Napi::Value CommunicatorWrap::WorldSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), comm_->world_size());
}

// Runs one collective on the pool, serialised with the others on this communicator; `keep` stays referenced.
Napi::Value CommunicatorWrap::Collective(Napi::Env env, const std::vector<Napi::Value>& keep,
                                         std::function<void(dist::Communicator&)> run) {
  auto comm = comm_;
  auto busy = busy_;
  return RunAsync(
      env, keep,
      [=] {
        std::lock_guard<std::mutex> lock(*busy);
        run(*comm);
      },
      [](Napi::Env e) -> Napi::Value { return e.Undefined(); });
}

// allReduce(tensors, average) -> Promise<void>: in place on the tensors.
Napi::Value CommunicatorWrap::AllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto tensors = TensorList(env, info[0], "allReduce(tensors)");
    const bool average = info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    return Collective(env, {info.This(), info[0]}, [=](dist::Communicator& c) mutable { c.all_reduce(tensors, average); });
  });
}

// broadcast(tensors, root) -> Promise<void>
Napi::Value CommunicatorWrap::Broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    auto tensors = TensorList(env, info[0], "broadcast(tensors)");
    if (!info[1].IsNumber()) fail("ERR_ARGUMENT", "broadcast(tensors, root): root must be a rank number");
    const int root = info[1].As<Napi::Number>().Int32Value();
    return Collective(env, {info.This(), info[0]}, [=](dist::Communicator& c) mutable { c.broadcast(tensors, root); });
  });
}

// barrier() -> Promise<void>
Napi::Value CommunicatorWrap::Barrier(const Napi::CallbackInfo& info) {
  return Collective(info.Env(), {info.This()}, [](dist::Communicator& c) { c.barrier(); });
}

void DefineCommunicator(Napi::Env env, Napi::Object exports) { exports.Set("Communicator", CommunicatorWrap::Define(env)); }

}  // namespace nodetune::binding
