#include "binding/runtime_binding.h"

#include <torch/version.h>

#include "binding/async.h"
#include "binding/errors.h"
#include "core/compute_thread.h"
#include "core/runtime.h"

namespace nodetune::binding {
namespace {

Napi::Value RuntimeInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    RuntimeInfo r = runtime_info();
    Napi::Object out = Napi::Object::New(env);
    out.Set("torchVersion", r.torch_version);
    out.Set("cudaAvailable", r.cuda_available);
    Napi::Array devices = Napi::Array::New(env, r.cuda_devices.size());
    for (size_t i = 0; i < r.cuda_devices.size(); ++i) devices.Set(static_cast<uint32_t>(i), r.cuda_devices[i]);
    out.Set("cudaDevices", devices);
    out.Set("torchLibrary", r.torch_library);
    Napi::Object blas = Napi::Object::New(env);
    blas.Set("name", r.blas.name);
    blas.Set("library", r.blas.library);
    blas.Set("threads", r.blas.threads);
    blas.Set("kernel", r.blas.kernel);
    blas.Set("config", r.blas.config);
    out.Set("blas", blas);
    out.Set("intraOpThreads", r.intra_op_threads);
    out.Set("interOpThreads", r.inter_op_threads);
    out.Set("hardwareThreads", r.hardware_threads);
    return out;
  });
}

// setNumThreads(torchThreads, blasThreads): values <= 0 leave that setting alone. LibTorch's intra-op setting is per
// thread under OpenMP: made here (what runtimeInfo() reads) and on the compute thread, which runs the work (before
// its next task, so it applies to every task submitted after this call).
Napi::Value SetNumThreadsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) ThrowArgument(env, "setNumThreads(torchThreads, blasThreads) expects two numbers");
  const int torch_threads = info[0].As<Napi::Number>().Int32Value();
  Guard(env, [&] { set_num_threads(torch_threads, info[1].As<Napi::Number>().Int32Value()); });
  set_compute_thread_torch_threads(torch_threads);
  return env.Undefined();
}

// measureMatmul(n, iterations, dtype, threads) -> Promise<number> (GFLOP/s); threads 0: the current setting
Napi::Value MeasureMatmulJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsString() || !info[3].IsNumber())
    ThrowArgument(env, "measureMatmul(n, iterations, dtype, threads) expects two numbers, a dtype name and a number");
  const int64_t n = info[0].As<Napi::Number>().Int64Value();
  const int64_t iterations = info[1].As<Napi::Number>().Int64Value();
  const std::string dtype = info[2].As<Napi::String>().Utf8Value();
  const int threads = info[3].As<Napi::Number>().Int32Value();
  auto gflops = std::make_shared<double>(0);
  return RunAsync(
      env, {}, [=] { *gflops = measure_matmul_gflops(n, iterations, dtype, threads); },
      [=](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, *gflops); });
}

// measureReadBandwidth(bytes, iterations) -> Promise<number> (GB/s)
Napi::Value MeasureReadJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) ThrowArgument(env, "measureReadBandwidth(bytes, iterations) expects two numbers");
  const int64_t bytes = info[0].As<Napi::Number>().Int64Value();
  const int64_t iterations = info[1].As<Napi::Number>().Int64Value();
  auto gbps = std::make_shared<double>(0);
  return RunAsync(
      env, {}, [=] { *gbps = measure_read_gbps(bytes, iterations); },
      [=](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, *gbps); });
}

// cudaComputeCapability(index) -> [major, minor]; [0, 0] where it cannot be asked
Napi::Value CudaComputeCapabilityJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) ThrowArgument(env, "cudaComputeCapability(index) expects a number");
  return Guard(env, [&] {
    auto cc = cuda_compute_capability(info[0].As<Napi::Number>().Int64Value());
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(0u, cc.first);
    out.Set(1u, cc.second);
    return out;
  });
}

Napi::Object BuildInfo(Napi::Env env) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("torchVersion", TORCH_VERSION);
  out.Set("cxx11Abi", static_cast<bool>(_GLIBCXX_USE_CXX11_ABI));
  out.Set("napiVersion", NAPI_VERSION);
  return out;
}

}  // namespace

void DefineRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("runtimeInfo", Napi::Function::New<RuntimeInfoJs>(env, "runtimeInfo"));
  exports.Set("setNumThreads", Napi::Function::New<SetNumThreadsJs>(env, "setNumThreads"));
  exports.Set("measureMatmul", Napi::Function::New<MeasureMatmulJs>(env, "measureMatmul"));
  exports.Set("measureReadBandwidth", Napi::Function::New<MeasureReadJs>(env, "measureReadBandwidth"));
  exports.Set("cudaComputeCapability", Napi::Function::New<CudaComputeCapabilityJs>(env, "cudaComputeCapability"));
  exports.Set("buildInfo", BuildInfo(env));
}

}  // namespace nodetune::binding
