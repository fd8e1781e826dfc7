#include <lowbit/sdk/error.h>

namespace lowbit {
namespace {
std::string compose(const std::string& file, const std::string& pointer, const std::string& problem,
                    const std::string& allowed) {
  std::string message = file.empty() ? "" : file + ": ";
  message += (pointer.empty() ? std::string("/") : pointer) + ": " + problem;
  if (!allowed.empty()) message += " (allowed: " + allowed + ")";
  return message;
}
}  // namespace

ConfigError::ConfigError(std::string file, std::string pointer, std::string problem,
                         std::string allowed)
    : std::runtime_error(compose(file, pointer, problem, allowed)),
      file_(std::move(file)),
      pointer_(std::move(pointer)),
      problem_(std::move(problem)),
      allowed_(std::move(allowed)) {}

}  // namespace lowbit
