// Errors raised by nodetune's own C++ code: a stable code plus a message. No N-API here;
// the binding maps these (and c10::Error / std::exception) to JavaScript NodetuneError.
#pragma once
#include <stdexcept>
#include <string>

namespace nodetune {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const noexcept { return code_; }

 private:
  std::string code_;
};

// A code and a message without the C++ backtrace, for any exception.
struct ErrorInfo {
  std::string code;
  std::string message;
};

// Classifies any exception (nodetune::Error, c10::Error and subclasses, std::bad_alloc, std::exception).
ErrorInfo describe_exception(const std::exception_ptr& error);

[[noreturn]] inline void fail(const std::string& code, const std::string& message) { throw Error(code, message); }

}  // namespace nodetune
