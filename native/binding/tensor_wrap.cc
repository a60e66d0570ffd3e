#include "binding/tensor_wrap.h"

#include "binding/addon_data.h"
#include "binding/async.h"
#include "binding/convert.h"
#include "binding/errors.h"
#include "core/device.h"

namespace nodetune::binding {
namespace {
// Marker passed to the constructor by Wrap(): the JS object adopts an existing tensor.
struct Adopt {
  at::Tensor tensor;
};
}  // namespace

Napi::Function TensorWrap::Define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "Tensor",
                                    {
                                        InstanceAccessor<&TensorWrap::Shape>("shape"),
                                        InstanceAccessor<&TensorWrap::Dtype>("dtype"),
                                        InstanceAccessor<&TensorWrap::Device>("device"),
                                        InstanceMethod<&TensorWrap::Data>("data"),
                                        InstanceMethod<&TensorWrap::To>("to"),
                                        InstanceMethod<&TensorWrap::Matmul>("matmul"),
                                    });
  GetAddonData(env).tensor_class = Napi::Persistent(ctor);
  return ctor;
}

Napi::Object TensorWrap::Wrap(Napi::Env env, at::Tensor tensor) {
  Adopt adopt{std::move(tensor)};
  return GetAddonData(env).tensor_class.New({Napi::External<Adopt>::New(env, &adopt)});
}

bool TensorWrap::IsTensor(Napi::Env env, const Napi::Value& value) {
  return value.IsObject() && value.As<Napi::Object>().InstanceOf(GetAddonData(env).tensor_class.Value());
}

at::Tensor TensorWrap::TensorOf(const Napi::Value& value) { return Napi::ObjectWrap<TensorWrap>::Unwrap(value.As<Napi::Object>())->tensor_; }

// new Tensor(data, shape?, dtype?, device?)
TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() == 1 && info[0].IsExternal()) {
    tensor_ = info[0].As<Napi::External<Adopt>>().Data()->tensor;
    return;
  }
  Guard(env, [&] {
    std::optional<std::vector<int64_t>> shape;
    if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) shape = ShapeFromJs(info[1], "Tensor shape");
    std::optional<c10::ScalarType> dtype;
    if (auto name = OptionalString(info[2], "Tensor dtype")) dtype = parse_dtype(*name);
    c10::Device device(c10::kCPU);
    if (auto name = OptionalString(info[3], "Tensor device")) device = parse_device(*name);
    at::Tensor t = TensorFromJs(info[0], shape, dtype, Borrow::kCopy, "Tensor data");
    tensor_ = device.is_cpu() ? t : t.to(device);
  });
}

Napi::Value TensorWrap::Shape(const Napi::CallbackInfo& info) { return ShapeToJs(info.Env(), tensor_.sizes()); }

Napi::Value TensorWrap::Dtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), dtype_name(tensor_.scalar_type()));
}

Napi::Value TensorWrap::Device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), device_name(tensor_.device()));
}

Napi::Value TensorWrap::Data(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    if (!tensor_.device().is_cpu())
      fail("ERR_DEVICE", "data() reads CPU tensors only; this one is on " + device_name(tensor_.device()) +
                             " (await tensor.to({ device: 'cpu' }) first)");
    return TensorToJs(env, tensor_);
  });
}

// to(device?, dtype?) -> Promise<Tensor>
Napi::Value TensorWrap::To(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    c10::Device device = tensor_.device();
    if (auto name = OptionalString(info[0], "to(): device")) device = parse_device(*name);
    c10::ScalarType dtype = tensor_.scalar_type();
    if (auto name = OptionalString(info[1], "to(): dtype")) dtype = parse_dtype(*name);
    auto input = tensor_;
    auto busy = busy_;
    auto result = std::make_shared<at::Tensor>();
    return RunAsync(
        env, {info.This()},
        [=] {
          std::lock_guard<std::mutex> lock(*busy);
          *result = input.to(device, dtype, /*non_blocking=*/false, /*copy=*/true);
        },
        [=](Napi::Env e) -> Napi::Value { return Wrap(e, *result); });
  });
}

// matmul(other) -> Promise<Tensor>
Napi::Value TensorWrap::Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&]() -> Napi::Value {
    if (!IsTensor(env, info[0])) fail("ERR_ARGUMENT", "matmul(other): other must be a Tensor");
    at::Tensor a = tensor_;
    at::Tensor b = TensorOf(info[0]);
    auto busy = busy_;
    auto result = std::make_shared<at::Tensor>();
    return RunAsync(
        env, {info.This(), info[0]},
        [=] {
          std::lock_guard<std::mutex> lock(*busy);
          *result = at::matmul(a, b);
        },
        [=](Napi::Env e) -> Napi::Value { return Wrap(e, *result); });
  });
}

}  // namespace nodetune::binding
