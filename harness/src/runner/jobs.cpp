#include <lowbit/runner/jobs.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace lowbit {
namespace {

/// The parent's environment with CUDA_VISIBLE_DEVICES replaced when a GPU is given.
std::vector<std::string> child_environment(const std::string& gpu) {
  std::vector<std::string> variables;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (!gpu.empty() && std::strncmp(*entry, "CUDA_VISIBLE_DEVICES=", 21) == 0) continue;
    variables.emplace_back(*entry);
  }
  if (!gpu.empty()) variables.push_back("CUDA_VISIBLE_DEVICES=" + gpu);
  return variables;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& text : strings) out.push_back(text.data());
  out.push_back(nullptr);
  return out;
}

pid_t spawn(const std::string& executable, std::vector<std::string> arguments,
            std::vector<std::string> environment) {
  arguments.insert(arguments.begin(), executable);
  auto argv = pointers(arguments);
  auto envp = pointers(environment);
  pid_t pid = 0;
  const int error = posix_spawn(&pid, executable.c_str(), nullptr, nullptr, argv.data(), envp.data());
  if (error != 0) {
    throw std::runtime_error(fmt::format("cannot start {}: {}", executable, std::strerror(error)));
  }
  return pid;
}

}  // namespace

int run_parallel_jobs(const ParallelRunOptions& options) {
  std::vector<pid_t> children;
  for (int i = 0; i < options.jobs; ++i) {
    auto arguments = options.arguments;
    arguments.push_back("--shard");
    arguments.push_back(fmt::format("{}/{}", i, options.jobs));
    const std::string gpu =
        options.gpus.empty() ? "" : options.gpus[static_cast<size_t>(i) % options.gpus.size()];
    children.push_back(spawn(options.executable, arguments, child_environment(gpu)));
  }
  int failed = 0;
  for (pid_t child : children) {
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  return failed;
}

}  // namespace lowbit
