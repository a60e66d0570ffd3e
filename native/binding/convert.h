// Conversion between JavaScript values and LibTorch tensors. No model math here.
//   typed arrays: Int32Array <-> int32, BigInt64Array <-> int64, Float32Array <-> float32,
//   Float64Array <-> float64, Uint8Array <-> uint8/bool, Int8Array, Int16Array,
//   Uint16Array <-> raw bfloat16/float16 bits (the dtype says which).
//   nested JS arrays of numbers: copied, shape inferred.
#pragma once
#include <ATen/ATen.h>
#include <napi.h>

#include <optional>
#include <string>
#include <vector>

namespace nodetune::binding {

enum class Borrow {
  kCopy,   // the tensor owns a copy of the data
  kAlias,  // the tensor aliases the JS memory: the caller keeps the JS value alive while the tensor is used
};

// Reads a shape (array of non-negative integers); `what` names the argument in errors.
std::vector<int64_t> ShapeFromJs(const Napi::Value& value, const std::string& what);

// A tensor from a typed array or nested array. `shape` (optional) must match the element count;
// `dtype` (optional) must agree with the typed array (or picks float16 vs bfloat16 for Uint16Array).
at::Tensor TensorFromJs(const Napi::Value& data, const std::optional<std::vector<int64_t>>& shape,
                        const std::optional<c10::ScalarType>& dtype, Borrow borrow, const std::string& what);

// A typed array over the tensor's data. CPU tensors that are contiguous are not copied: the array keeps
// the tensor alive. Other tensors are first made contiguous on the CPU (on the calling thread).
Napi::Value TensorToJs(Napi::Env env, const at::Tensor& tensor);

Napi::Array ShapeToJs(Napi::Env env, at::IntArrayRef sizes);

// Optional string argument: undefined/null -> nullopt; anything else must be a string.
std::optional<std::string> OptionalString(const Napi::Value& value, const std::string& what);
// A required string argument, and an array of strings (ERR_ARGUMENT naming `what` otherwise).
std::string StringArg(const Napi::Value& value, const std::string& what);
std::vector<std::string> StringsArg(const Napi::Value& value, const std::string& what);

}  // namespace nodetune::binding
