#include <lowbit/util/exception_message.h>

#include <c10/util/Exception.h>

namespace lowbit {

std::string exception_message(const std::exception& e) {
  const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
  if (torch_error == nullptr) return e.what();
  std::string message = torch_error->what_without_backtrace();
  const auto line_end = message.find('\n');
  if (line_end != std::string::npos) message.resize(line_end);
  return message;
}

}  // namespace lowbit
