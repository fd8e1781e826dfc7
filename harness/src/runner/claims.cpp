#include <lowbit/runner/claims.h>
#include <lowbit/util/hash.h>

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <fstream>

#include <signal.h>
#include <unistd.h>

namespace lowbit {
namespace {

std::string host_name() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return "unknown-host";
  return name.data();
}

/// Whether a process of this host still runs: a zombie nobody has reaped (its parent died, and
/// the reaper of orphans does not reap) counts as gone.
bool process_running(int64_t pid) {
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!std::getline(stat, line)) return true;  // no /proc: trust kill()
  // "pid (command) state ...": the command may hold spaces and parentheses.
  const auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

}  // namespace

std::string describe(const ClaimOwner& owner) {
  return fmt::format("pid {} on {}", owner.pid, owner.host);
}

ClaimKeeper::ClaimKeeper(const std::string& database, ClaimTiming timing)
    : database_(database),
      timing_(timing),
      owner_{host_name(), static_cast<int64_t>(::getpid()), random_hex(16)} {
  heartbeat_ = std::thread([this] { beat(); });
}

ClaimKeeper::~ClaimKeeper() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  heartbeat_.join();
}

bool ClaimKeeper::alive(const ClaimOwner& holder, double heartbeat) const {
  if (unix_seconds() - heartbeat > timing_.stale_seconds) return false;
  // On this host a vanished process is dead at once, without waiting for its heartbeat to age.
  return holder.host != owner_.host || process_running(holder.pid);
}

void ClaimKeeper::beat() {
  std::unique_ptr<ResultStore> store;
  std::unique_lock<std::mutex> lock(mutex_);
  const auto interval = std::chrono::duration<double>(timing_.heartbeat_seconds);
  while (!wake_.wait_for(lock, interval, [this] { return stopping_; })) {
    try {
      if (!store) store = std::make_unique<ResultStore>(database_);
      store->renew_claims(owner_.token);
    } catch (const std::exception&) {
      // A busy or briefly unreachable database: the next beat tries again, well before the
      // claim could go stale.
    }
  }
}

}  // namespace lowbit
