#include "binding/runtime_binding.h"

#include <torch/version.h>

#include "binding/async.h"
#include "binding/convert.h"
#include "binding/errors.h"
#include "core/block_cache.h"
#include "core/compute_thread.h"
#include "core/memory.h"
#include "core/runtime.h"
#include "nn/int8_decode.h"
#include "nn/quantized_weight.h"

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

// setBf16ModelThreads(n): LibTorch intra-op threads for the calls on bfloat16 models (0: leave the setting).
Napi::Value SetBf16ModelThreadsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) ThrowArgument(env, "setBf16ModelThreads(threads) expects a number");
  set_bf16_model_threads(info[0].As<Napi::Number>().Int32Value());
  return env.Undefined();
}

Napi::Value Bf16ModelThreadsJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), bf16_model_threads());
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

// setMmapThreshold(bytes) -> whether the C library took it (core/memory.h); mmapThreshold() -> the value set, 0 if none
Napi::Value SetMmapThresholdJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) ThrowArgument(env, "setMmapThreshold(bytes) expects a number");
  const int64_t bytes = info[0].As<Napi::Number>().Int64Value();
  return Napi::Boolean::New(env, bytes > 0 && set_mmap_threshold(size_t(bytes)));
}

Napi::Value MmapThresholdJs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(mmap_threshold())); }

// installBlockCache(minBytes, slack) -> whether it was installed now (core/block_cache.h); releaseBlockCache() -> the
// bytes unmapped; blockCacheStats() -> its counters, or null when it is not installed
Napi::Value InstallBlockCacheJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) ThrowArgument(env, "installBlockCache(minBytes, slack) expects two numbers");
  const int64_t min_bytes = info[0].As<Napi::Number>().Int64Value(), slack = info[1].As<Napi::Number>().Int64Value();
  if (min_bytes < 0 || slack < 0) ThrowArgument(env, "installBlockCache(minBytes, slack): both must be 0 or more");
  return Napi::Boolean::New(env, Guard(env, [&] { return install_block_cache(size_t(min_bytes), size_t(slack)); }));
}

Napi::Value ReleaseBlockCacheJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(release_block_cache()));
}

Napi::Value BlockCacheStatsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const BlockCacheStats s = block_cache_stats();
  if (!s.installed) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("minBytes", double(s.min_bytes));
  out.Set("slack", double(s.slack));
  out.Set("live", double(s.live));
  out.Set("idle", double(s.idle));
  out.Set("peakLive", double(s.peak_live));
  out.Set("hits", double(s.hits));
  out.Set("misses", double(s.misses));
  out.Set("released", double(s.released));
  return out;
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

// int8DecodeKernels() -> the int8 decoding kernels this CPU runs, preferred first (nn/int8_decode.h)
Napi::Value Int8DecodeKernelsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    const auto names = nn::int8_decode_kernels();
    Napi::Array out = Napi::Array::New(env, names.size());
    for (size_t i = 0; i < names.size(); ++i) out.Set(uint32_t(i), names[i]);
    return out;
  });
}

// setInt8DecodeKernel(name) -> the previous kernel's name; int8DecodeKernel() -> the current one
Napi::Value SetInt8DecodeKernelJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] { return Napi::String::New(env, nn::set_int8_decode_kernel(StringArg(info[0], "kernel"))); });
}

Napi::Value Int8DecodeKernelJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] { return Napi::String::New(env, nn::int8_decode_kernel()); });
}

// int8DecodeProduct(weight Float32Array [n * k], n, k, x Float32Array [m * k], m, kernel) -> Float32Array [m * n]:
// the weight quantized to int8 (per-row absmax), then x @ W^T by that decoding kernel ('' for the current one).
Napi::Value Int8DecodeProductJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[1].IsNumber() || !info[2].IsNumber() || !info[4].IsNumber())
    ThrowArgument(env, "int8DecodeProduct(weight, n, k, x, m, kernel) expects sizes n, k and m as numbers");
  return Guard(env, [&] {
    const int64_t n = info[1].As<Napi::Number>().Int64Value(), k = info[2].As<Napi::Number>().Int64Value();
    const int64_t m = info[4].As<Napi::Number>().Int64Value();
    at::Tensor w = TensorFromJs(info[0], std::vector<int64_t>{n, k}, at::kFloat, Borrow::kCopy, "weight");
    at::Tensor x = TensorFromJs(info[3], std::vector<int64_t>{m, k}, at::kFloat, Borrow::kCopy, "x");
    auto q = nn::quantize_weight(w, nn::QuantFormat::kInt8, false, at::kCPU);
    at::Tensor y = at::empty({m, n}, at::kFloat);
    nn::int8_decode_product(x.data_ptr<float>(), m, q->data.data_ptr<int8_t>(), q->scale.data_ptr<float>(), k, n,
                            y.data_ptr<float>(), StringArg(info[5], "kernel"));
    return TensorToJs(env, y);
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
  exports.Set("setBf16ModelThreads", Napi::Function::New<SetBf16ModelThreadsJs>(env, "setBf16ModelThreads"));
  exports.Set("bf16ModelThreads", Napi::Function::New<Bf16ModelThreadsJs>(env, "bf16ModelThreads"));
  exports.Set("setMmapThreshold", Napi::Function::New<SetMmapThresholdJs>(env, "setMmapThreshold"));
  exports.Set("mmapThreshold", Napi::Function::New<MmapThresholdJs>(env, "mmapThreshold"));
  exports.Set("installBlockCache", Napi::Function::New<InstallBlockCacheJs>(env, "installBlockCache"));
  exports.Set("releaseBlockCache", Napi::Function::New<ReleaseBlockCacheJs>(env, "releaseBlockCache"));
  exports.Set("blockCacheStats", Napi::Function::New<BlockCacheStatsJs>(env, "blockCacheStats"));
  exports.Set("measureMatmul", Napi::Function::New<MeasureMatmulJs>(env, "measureMatmul"));
  exports.Set("measureReadBandwidth", Napi::Function::New<MeasureReadJs>(env, "measureReadBandwidth"));
  exports.Set("cudaComputeCapability", Napi::Function::New<CudaComputeCapabilityJs>(env, "cudaComputeCapability"));
  exports.Set("int8DecodeKernels", Napi::Function::New<Int8DecodeKernelsJs>(env, "int8DecodeKernels"));
  exports.Set("int8DecodeKernel", Napi::Function::New<Int8DecodeKernelJs>(env, "int8DecodeKernel"));
  exports.Set("setInt8DecodeKernel", Napi::Function::New<SetInt8DecodeKernelJs>(env, "setInt8DecodeKernel"));
  exports.Set("int8DecodeProduct", Napi::Function::New<Int8DecodeProductJs>(env, "int8DecodeProduct"));
  exports.Set("buildInfo", BuildInfo(env));
}

}  // namespace nodetune::binding
