#include <lowbit/runner/jobs.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <sys/prctl.h>
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

/// Starts a job that dies with this process: the kernel sends it SIGTERM when the parent exits,
/// however it exits (SIGKILL included), so no job trains on as an orphan. Only async-signal-safe
/// calls happen between fork and exec.
pid_t spawn(const std::string& executable, std::vector<std::string> arguments,
            std::vector<std::string> environment) {
  arguments.insert(arguments.begin(), executable);
  auto argv = pointers(arguments);
  auto envp = pointers(environment);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    throw std::runtime_error(fmt::format("cannot start {}: {}", executable, std::strerror(errno)));
  }
  if (pid == 0) {
    // The parent may have died before prctl took effect; then nobody would signal us.
    if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != parent) ::_exit(126);
    ::execve(executable.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

// The running jobs, for the signal handler (plain ints: read there without locks).
constexpr int kMaxJobs = 1024;
volatile sig_atomic_t job_count = 0;
volatile pid_t job_pids[kMaxJobs];

void forward_to_jobs(int signal) {
  for (sig_atomic_t i = 0; i < job_count; ++i) ::kill(job_pids[i], signal);
}

/// While the jobs run, SIGTERM and SIGINT sent to the parent go to every job as well, so each
/// stops (its trial resumes from its checkpoint next time) before the parent reports and exits.
class ForwardSignals {
 public:
  ForwardSignals() {
    struct sigaction action {};
    action.sa_handler = forward_to_jobs;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGTERM, &action, &previous_term_);
    ::sigaction(SIGINT, &action, &previous_int_);
  }
  ~ForwardSignals() {
    ::sigaction(SIGTERM, &previous_term_, nullptr);
    ::sigaction(SIGINT, &previous_int_, nullptr);
    job_count = 0;
  }

 private:
  struct sigaction previous_term_ {};
  struct sigaction previous_int_ {};
};

}  // namespace

std::vector<std::string> job_arguments(const JobCommandLine& command) {
  std::vector<std::string> arguments;
  for (const auto& folder : command.plugin_dirs)
    arguments.insert(arguments.end(), {"--plugin-dir", folder});
  arguments.push_back("run");
  arguments.insert(arguments.end(), command.experiment_files.begin(),
                   command.experiment_files.end());
  if (!command.profile.empty()) arguments.insert(arguments.end(), {"--profile", command.profile});
  if (command.reuse) arguments.push_back("--reuse");
  arguments.insert(arguments.end(), {"--db", command.database});
  if (!command.device.empty()) arguments.insert(arguments.end(), {"--device", command.device});
  arguments.insert(arguments.end(), {"--threads", std::to_string(command.threads)});
  return arguments;
}

int64_t hardware_threads() {
  // hardware_concurrency() is 0 when the count is unknown.
  return std::max<int64_t>(1, std::thread::hardware_concurrency());
}

int64_t threads_per_job(int64_t requested, int jobs, int64_t hardware_threads) {
  if (requested >= 0) return requested;
  // Without a thread count each job would take every core.
  return std::max<int64_t>(1, hardware_threads / std::max(1, jobs));
}

std::string oversubscription_warning(int jobs, int64_t threads, int64_t hardware_threads) {
  const int64_t per_job = threads > 0 ? threads : hardware_threads;
  if (per_job * jobs <= hardware_threads) return "";
  // Measured on 2 cores: 2 jobs x 2 threads ran 4.6x slower than 2 jobs x 1 thread.
  return fmt::format(
      "{} jobs x {} threads > {} hardware threads; CPU trials will oversubscribe the cores and run "
      "several times slower (use --threads {})",
      jobs, per_job, hardware_threads, std::max<int64_t>(1, hardware_threads / std::max(1, jobs)));
}

int run_parallel_jobs(const ParallelRunOptions& options) {
  if (options.jobs > kMaxJobs) {
    throw std::invalid_argument(
        fmt::format("at most {} jobs (asked for {})", kMaxJobs, options.jobs));
  }
  ForwardSignals forwarding;
  std::vector<pid_t> children;
  for (int i = 0; i < options.jobs; ++i) {
    auto arguments = options.arguments;
    arguments.push_back("--shard");
    arguments.push_back(fmt::format("{}/{}", i, options.jobs));
    const std::string gpu =
        options.gpus.empty() ? "" : options.gpus[static_cast<size_t>(i) % options.gpus.size()];
    children.push_back(spawn(options.executable, arguments, child_environment(gpu)));
    job_pids[i] = children.back();
    job_count = i + 1;
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
