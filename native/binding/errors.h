// JavaScript errors from native failures: every exception becomes a NodetuneError with a stable code.
#pragma once
#include <napi.h>

#include <exception>
#include <string>

#include "core/error.h"

namespace nodetune::binding {

// Creates `new NodetuneError(code, message)` (a plain Error with .code before the class is set).
Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message);
Napi::Error MakeError(Napi::Env env, const ErrorInfo& info);

// setErrorClass(NodetuneError): called once by lib/native.ts.
Napi::Value SetErrorClass(const Napi::CallbackInfo& info);

// Runs `body`; any C++ exception other than a Napi::Error is rethrown as a NodetuneError.
template <typename Body>
auto Guard(Napi::Env env, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw MakeError(env, describe_exception(std::current_exception()));
  }
}

// Argument checks for the binding's own signature (TypeScript validates user options first).
[[noreturn]] void ThrowArgument(Napi::Env env, const std::string& message);

}  // namespace nodetune::binding
