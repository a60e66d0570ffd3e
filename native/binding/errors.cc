#include "binding/errors.h"

#include "binding/addon_data.h"

namespace nodetune::binding {

Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message) {
  AddonData& data = GetAddonData(env);
  if (!data.error_class.IsEmpty()) {
    Napi::Object error = data.error_class.New({Napi::String::New(env, code), Napi::String::New(env, message)});
    return Napi::Error(env, error);
  }
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

Napi::Error MakeError(Napi::Env env, const ErrorInfo& info) { return MakeError(env, info.code, info.message); }

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (info.Length() != 1 || !info[0].IsFunction()) ThrowArgument(info.Env(), "setErrorClass expects a constructor");
  GetAddonData(info.Env()).error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

void ThrowArgument(Napi::Env env, const std::string& message) { throw MakeError(env, "ERR_ARGUMENT", message); }

}  // namespace nodetune::binding
