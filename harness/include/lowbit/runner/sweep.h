#pragma once
// Runs an experiment's matrix: every run, every trial not yet in the database, one after another.
// A trial is claimed in the database before it trains and stored only when it ends, so a killed
// sweep resumes where it stopped and concurrent sweeps on one database never train a trial twice.

#include <lowbit/experiment/experiment.h>
#include <lowbit/plugins/plugin_loader.h>
#include <lowbit/results/store.h>
#include <lowbit/runner/claims.h>
#include <lowbit/runner/reporter.h>
#include <lowbit/sdk/registry.h>
#include <lowbit/training/device.h>

#include <torch/torch.h>

#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace lowbit {

/// How a sweep's trials are dealt to shards.
enum class ShardBy {
  /// Trial t of run r (run-major position p = r * trials + t) goes to shard p mod N: even shares.
  /// Shards on one database; a trial whose 32W32A trial is in another shard waits for it.
  position,
  /// Trial t of every run goes to shard t mod N, so a quantized trial and the 32W32A trial it
  /// starts from share a shard: for shards with databases of their own (Slurm), where a shard
  /// cannot wait for another's trial and would train it again.
  trial_index,
};

struct SweepOptions {
  std::string device;    ///< overrides the experiment's "device" when not empty
  int64_t threads = -1;  ///< overrides the experiment's "threads" when >= 0
  /// This process trains only the trials whose position in the sweep (run-major, counted
  /// from 0) is shard_index modulo shard_count; concurrent jobs and Slurm array tasks split a
  /// sweep this way, so they never train the same trial.
  int64_t shard_index = 0;
  int64_t shard_count = 1;
  ShardBy shard_by = ShardBy::position;
  /// When set, this process trains only the trials of its share that this accepts (a run of the
  /// experiment, a trial index); the others count as left elsewhere. A trial that an accepted
  /// one starts from is still trained first when the database lacks it. `lowbit verify`
  /// re-trains chosen trials this way.
  std::function<bool(const RunPlan& run, int64_t trial_index)> train_only;
  /// Progress lines (ConsoleReporter) go here when it is not null.
  std::ostream* progress = nullptr;
  /// Told of everything too, after the database and the progress lines; must outlive the sweep.
  std::vector<Reporter*> reporters;
  /// A trial that another experiment of the database finished under the same run hash (the
  /// same resolved configuration: model, quantizer, strategies, data, training, seed), with the
  /// same plugin files and LibTorch version, and whose weights are in the database, is recorded
  /// as it is instead of being trained again (a campaign of tables pretrains each 32W32A trial
  /// once, and shares identical baselines). The core library is not compared: reuse after
  /// changing it is the user's call.
  bool reuse_other_experiments = false;
  /// Heartbeat and staleness of this sweep's claims on its trials.
  ClaimTiming claim_timing;
};

/// Parses "i/N" (0 <= i < N) into {i, N}; throws std::invalid_argument saying what is allowed.
std::pair<int64_t, int64_t> parse_shard(const std::string& text);

/// Sets LibTorch's intra-op threads: `threads` > 0 as given, 0 every hardware thread (LibTorch's
/// own default can be one thread on virtual machines that report one core per socket).
void set_intra_op_threads(int64_t threads);

class SweepRunner {
 public:
  SweepRunner(const Registry& registry, const PluginLoader& plugins, ResultStore& store)
      : registry_(registry), plugins_(plugins), store_(store) {}

  SweepSummary run(const Experiment& experiment, const SweepOptions& options);

 private:
  const Registry& registry_;
  const PluginLoader& plugins_;
  ResultStore& store_;
};

}  // namespace lowbit
