#include "binding/convert.h"

#include <cmath>
#include <cstring>

#include "binding/errors.h"
#include "core/device.h"
#include "core/error.h"

namespace nodetune::binding {
namespace {

struct TypedKind {
  c10::ScalarType dtype;
  size_t element_size;
};

TypedKind KindOf(napi_typedarray_type type, const std::optional<c10::ScalarType>& requested, const std::string& what) {
  switch (type) {
    case napi_int8_array: return {c10::kChar, 1};
    case napi_uint8_array:
    case napi_uint8_clamped_array:
      return {requested == c10::kBool ? c10::kBool : c10::kByte, 1};
    case napi_int16_array: return {c10::kShort, 2};
    case napi_uint16_array:
      if (requested == c10::kHalf || requested == c10::kBFloat16) return {*requested, 2};
      fail("ERR_DTYPE", what + ": a Uint16Array holds raw 16-bit floats; say which with dtype 'bfloat16' or 'float16'");
    case napi_int32_array: return {c10::kInt, 4};
    case napi_float32_array: return {c10::kFloat, 4};
    case napi_float64_array: return {c10::kDouble, 8};
    case napi_bigint64_array: return {c10::kLong, 8};
    default: fail("ERR_DTYPE", what + ": unsupported typed array (use Int32Array, BigInt64Array, Float32Array, "
                                   "Float64Array, Uint8Array, Int8Array, Int16Array or Uint16Array)");
  }
}

// Shape of a nested array; every row must have the same length.
void InferShape(const Napi::Value& value, std::vector<int64_t>& shape, size_t depth, const std::string& what) {
  if (!value.IsArray()) return;
  auto array = value.As<Napi::Array>();
  const int64_t length = array.Length();
  if (depth == shape.size()) shape.push_back(length);
  else if (shape[depth] != length)
    fail("ERR_SHAPE", what + ": ragged nested array (rows of length " + std::to_string(shape[depth]) + " and " +
                          std::to_string(length) + " at depth " + std::to_string(depth) + ")");
  if (length > 0) InferShape(array.Get(uint32_t{0}), shape, depth + 1, what);
}

void Flatten(const Napi::Value& value, std::vector<double>& out, size_t depth, size_t rank, const std::vector<int64_t>& shape,
             const std::string& what) {
  if (depth == rank) {
    if (!value.IsNumber()) fail("ERR_DTYPE", what + ": nested array holds a non-number at element " + std::to_string(out.size()));
    out.push_back(value.As<Napi::Number>().DoubleValue());
    return;
  }
  if (!value.IsArray()) fail("ERR_SHAPE", what + ": expected an array at depth " + std::to_string(depth));
  auto array = value.As<Napi::Array>();
  if (static_cast<int64_t>(array.Length()) != shape[depth])
    fail("ERR_SHAPE", what + ": ragged nested array (expected " + std::to_string(shape[depth]) + " elements at depth " +
                          std::to_string(depth) + ", found " + std::to_string(array.Length()) + ")");
  for (uint32_t i = 0; i < array.Length(); ++i) Flatten(array.Get(i), out, depth + 1, rank, shape, what);
}

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

std::vector<int64_t> ShapeFromJs(const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) fail("ERR_SHAPE", what + ": shape must be an array of non-negative integers");
  auto array = value.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value v = array.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || std::floor(d) != d || d > 9.0e15)
      fail("ERR_SHAPE", what + ": shape[" + std::to_string(i) + "] must be a non-negative integer");
    shape.push_back(static_cast<int64_t>(d));
  }
  return shape;
}

at::Tensor TensorFromJs(const Napi::Value& data, const std::optional<std::vector<int64_t>>& shape,
                        const std::optional<c10::ScalarType>& dtype, Borrow borrow, const std::string& what) {
  if (data.IsTypedArray()) {
    auto typed = data.As<Napi::TypedArray>();
    TypedKind kind = KindOf(typed.TypedArrayType(), dtype, what);
    if (dtype && *dtype != kind.dtype)
      fail("ERR_DTYPE", what + ": dtype '" + dtype_name(*dtype) + "' does not match the typed array (holds " +
                            dtype_name(kind.dtype) + ")");
    const int64_t length = static_cast<int64_t>(typed.ElementLength());
    std::vector<int64_t> sizes = shape ? *shape : std::vector<int64_t>{length};
    if (Numel(sizes) != length)
      fail("ERR_SHAPE", what + ": shape " + ShapeString(sizes) + " needs " + std::to_string(Numel(sizes)) +
                            " elements but the typed array has " + std::to_string(length));
    auto* bytes = static_cast<uint8_t*>(typed.ArrayBuffer().Data()) + typed.ByteOffset();
    auto options = at::TensorOptions().dtype(kind.dtype);
    if (length == 0) return at::empty(sizes, options);
    at::Tensor view = at::from_blob(bytes, sizes, options);
    return borrow == Borrow::kAlias ? view : view.clone();
  }
  if (data.IsArray()) {
    std::vector<int64_t> inferred;
    InferShape(data, inferred, 0, what);
    std::vector<double> values;
    values.reserve(Numel(inferred));
    Flatten(data, values, 0, inferred.size(), inferred, what);
    std::vector<int64_t> sizes = shape ? *shape : inferred;
    if (Numel(sizes) != static_cast<int64_t>(values.size()))
      fail("ERR_SHAPE", what + ": shape " + ShapeString(sizes) + " needs " + std::to_string(Numel(sizes)) +
                            " elements but the array has " + std::to_string(values.size()));
    at::Tensor t = at::from_blob(values.data(), {static_cast<int64_t>(values.size())}, at::kDouble).clone().reshape(sizes);
    c10::ScalarType target = dtype.value_or(c10::kFloat);
    if (at::isIntegralType(target, /*includeBool=*/true)) {
      for (size_t i = 0; i < values.size(); ++i)
        if (std::floor(values[i]) != values[i])
          fail("ERR_DTYPE", what + ": element " + std::to_string(i) + " is " + std::to_string(values[i]) +
                                ", not an integer, but dtype is " + dtype_name(target));
    }
    return t.to(target);
  }
  fail("ERR_DTYPE", what + ": expected a typed array or an array of numbers");
}

Napi::Value TensorToJs(Napi::Env env, const at::Tensor& tensor) {
  at::Tensor t = tensor;
  if (!t.device().is_cpu()) t = t.to(at::kCPU);
  t = t.contiguous();
  const int64_t n = t.numel();
  napi_typedarray_type type;
  switch (t.scalar_type()) {
    case c10::kFloat: type = napi_float32_array; break;
    case c10::kDouble: type = napi_float64_array; break;
    case c10::kInt: type = napi_int32_array; break;
    case c10::kLong: type = napi_bigint64_array; break;
    case c10::kShort: type = napi_int16_array; break;
    case c10::kChar: type = napi_int8_array; break;
    case c10::kByte:
    case c10::kBool: type = napi_uint8_array; break;
    case c10::kHalf:
    case c10::kBFloat16: type = napi_uint16_array; break;
    default: fail("ERR_DTYPE", "cannot hand a " + dtype_name(t.scalar_type()) + " tensor to JavaScript");
  }
  const size_t bytes = static_cast<size_t>(n) * t.element_size();
  Napi::ArrayBuffer buffer;
  if (n == 0) {
    buffer = Napi::ArrayBuffer::New(env, 0);
  } else {
    // The ArrayBuffer owns a reference to the tensor; freeing it on the main thread is fine.
    auto* holder = new at::Tensor(t);
    buffer = Napi::ArrayBuffer::New(env, holder->data_ptr(), bytes,
                                    [](Napi::Env, void*, at::Tensor* held) { delete held; }, holder);
  }
  napi_value result;
  NAPI_THROW_IF_FAILED(env, napi_create_typedarray(env, type, static_cast<size_t>(n), buffer, 0, &result), Napi::Value());
  return Napi::Value(env, result);
}

Napi::Array ShapeToJs(Napi::Env env, at::IntArrayRef sizes) {
  Napi::Array out = Napi::Array::New(env, sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(sizes[i])));
  return out;
}

std::optional<std::string> OptionalString(const Napi::Value& value, const std::string& what) {
  if (value.IsUndefined() || value.IsNull()) return std::nullopt;
  if (!value.IsString()) fail("ERR_ARGUMENT", what + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

std::string StringArg(const Napi::Value& value, const std::string& what) {
  if (!value.IsString()) fail("ERR_ARGUMENT", what + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

std::vector<std::string> StringsArg(const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) fail("ERR_ARGUMENT", what + " must be an array of strings");
  auto a = value.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(StringArg(a.Get(i), what + "[]"));
  return out;
}

}  // namespace nodetune::binding
