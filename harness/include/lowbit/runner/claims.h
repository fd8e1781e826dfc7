#pragma once
// Claims let several `lowbit run` processes share one database without training a trial twice:
// a process claims a trial in the database before training it and keeps the claim alive with a
// heartbeat from a thread of its own; a claim whose owner died (its pid is gone on this host, or
// its heartbeat stopped) is taken over by the next process that wants the trial.

#include <lowbit/results/store.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace lowbit {

struct ClaimTiming {
  double heartbeat_seconds = 15;  ///< how often the owner renews its claims
  double stale_seconds = 120;     ///< a claim not renewed for this long is dead
};

/// This process as a claim owner, and its heartbeat. One per sweep; its claims are renewed
/// through a connection of its own, so a long training step never lets them go stale.
class ClaimKeeper {
 public:
  ClaimKeeper(const std::string& database, ClaimTiming timing = {});
  ~ClaimKeeper();
  ClaimKeeper(const ClaimKeeper&) = delete;
  ClaimKeeper& operator=(const ClaimKeeper&) = delete;

  const ClaimOwner& owner() const { return owner_; }
  /// Whether the holder of a claim last renewed at `heartbeat` (Unix seconds) still lives.
  bool alive(const ClaimOwner& holder, double heartbeat) const;

 private:
  void beat();

  std::string database_;
  ClaimTiming timing_;
  ClaimOwner owner_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread heartbeat_;
};

/// "pid 1234 on node7".
std::string describe(const ClaimOwner& owner);

}  // namespace lowbit
