#include <lowbit/util/cpu.h>

#include <fstream>

namespace lowbit {
namespace {

std::string trimmed(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

}  // namespace

std::string cpu_model_name(const std::string& cpuinfo) {
  std::ifstream in(cpuinfo);
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos || trimmed(line.substr(0, colon)) != "model name") continue;
    const auto name = trimmed(line.substr(colon + 1));
    return name.empty() ? kUnknownCpu : name;
  }
  return kUnknownCpu;
}

}  // namespace lowbit
