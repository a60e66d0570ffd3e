#include "core/error.h"

#include <c10/util/Exception.h>

#include <new>

namespace nodetune {
namespace {

bool contains(const std::string& text, const char* needle) { return text.find(needle) != std::string::npos; }

// LibTorch raises plain c10::Error for most problems; its message says which kind it is.
std::string classify_torch_message(const std::string& msg) {
  if (contains(msg, "out of memory") || contains(msg, "DefaultCPUAllocator: can't allocate")) return "ERR_OOM";
  if (contains(msg, "CUDA") || contains(msg, "cuda") || contains(msg, "device type") ||
      contains(msg, "Expected all tensors to be on the same device") || contains(msg, "Invalid device"))
    return "ERR_DEVICE";
  if (contains(msg, "scalar type") || contains(msg, "dtype") || contains(msg, "Expected object of scalar type") ||
      contains(msg, "not implemented for '"))
    return "ERR_DTYPE";
  if (contains(msg, "shape") || contains(msg, "size") || contains(msg, "dimension") || contains(msg, "mat1 and mat2") ||
      contains(msg, "must match") || contains(msg, "out of range") || contains(msg, "numel"))
    return "ERR_SHAPE";
  return "ERR_TORCH";
}

// c10 messages end with "Exception raised from ..." lines in some builds; keep the first part.
std::string strip_backtrace(std::string msg) {
  for (const char* marker : {"\nException raised from", "Exception raised from "}) {
    auto pos = msg.find(marker);
    if (pos != std::string::npos) msg = msg.substr(0, pos);
  }
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

}  // namespace

ErrorInfo describe_exception(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return {e.code(), e.what()};
  } catch (const c10::OutOfMemoryError& e) {
    return {"ERR_OOM", strip_backtrace(e.what_without_backtrace())};
  } catch (const c10::TypeError& e) {
    return {"ERR_DTYPE", strip_backtrace(e.what_without_backtrace())};
  } catch (const c10::IndexError& e) {
    return {"ERR_SHAPE", strip_backtrace(e.what_without_backtrace())};
  } catch (const c10::Error& e) {
    std::string msg = strip_backtrace(e.what_without_backtrace());
    return {classify_torch_message(msg), msg};
  } catch (const std::bad_alloc&) {
    return {"ERR_OOM", "out of memory (std::bad_alloc)"};
  } catch (const std::exception& e) {
    return {"ERR_TORCH", strip_backtrace(e.what())};
  } catch (...) {
    return {"ERR_TORCH", "unknown native exception"};
  }
}

}  // namespace nodetune
