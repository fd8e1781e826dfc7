#pragma once
// Errors in user input (experiment files, plugin options, command-line values).

#include <stdexcept>
#include <string>

namespace lowbit {

/// Bad input. The message names where (file and JSON pointer), what is wrong, and what is allowed,
/// so a user can fix the file without reading our source.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string file, std::string pointer, std::string problem, std::string allowed = "");

  const std::string& file() const { return file_; }
  const std::string& pointer() const { return pointer_; }
  const std::string& problem() const { return problem_; }
  const std::string& allowed() const { return allowed_; }

 private:
  std::string file_;
  std::string pointer_;
  std::string problem_;
  std::string allowed_;
};

}  // namespace lowbit
