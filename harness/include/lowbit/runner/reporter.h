#pragma once
// A sweep's reporter, in the manner of google/benchmark's BenchmarkReporter: the sweep and the
// trainer say what happens (context, each trial's news and epochs, each trial's end, the
// summary) and reporters decide what to do with it. The console reporter prints the progress
// lines; the store reporter records trials in the results database.

#include <lowbit/results/records.h>
#include <lowbit/results/store.h>
#include <lowbit/training/trial_reporter.h>

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lowbit {

/// What a sweep is about to train, and on what.
struct SweepContext {
  std::string experiment;
  size_t runs = 0;
  int64_t trials = 0;  ///< per run
  torch::Device device = torch::kCPU;
  int threads = 0;   ///< LibTorch's intra-op threads
  std::string data;  ///< the data set's name
  int64_t train_images = 0;
  int64_t test_images = 0;
};

struct SweepSummary {
  int64_t trials_run = 0;
  int64_t trials_skipped = 0;  ///< already finished in the database
  int64_t trials_failed = 0;
  int64_t trials_elsewhere = 0;          ///< left to other shards
  int64_t trials_claimed_elsewhere = 0;  ///< being trained by another live process
  int64_t trials_reused = 0;             ///< recorded from another experiment (--reuse)
};

/// Every call has a no-op default. A reporter may throw: the sweep stops, except for
/// TrialAlreadyFinished from on_trial_end (another process recorded the trial first), which
/// it reports with on_trial_not_recorded and goes on.
class Reporter : public TrialReporter {
 public:
  virtual void on_sweep_begin(const SweepContext& /*sweep*/) {}
  /// A trial this process leaves alone: finished already (claim.outcome finished), or being
  /// trained by a live process (owned_elsewhere; claim.holder is who).
  virtual void on_trial_skipped(const TrialContext& /*trial*/, const TrialClaim& /*claim*/) {}
  /// A trial claimed from `stopped`, which held it and died; it trains next.
  virtual void on_trial_taken_over(const TrialContext& /*trial*/, const ClaimOwner& /*stopped*/) {}
  /// A 32W32A trial that the next trial starts from, trained before it.
  virtual void on_trial_needed_first(const TrialContext& /*trial*/) {}
  /// A finished 32W32A trial that the next trial starts from was trained again, its weights file
  /// having gone (`path`): `recorded` is what the database held, `again` the new record.
  virtual void on_source_trained_again(const TrialContext& /*trial*/, const std::string& /*path*/,
                                       const TrialRecord& /*recorded*/,
                                       const TrialRecord& /*again*/) {}
  /// The next trial waits for this one, which `holder` trains (said once per wait).
  virtual void on_trial_waiting(const TrialContext& /*trial*/, const ClaimOwner& /*holder*/) {}
  /// The trial was taken as `experiment` finished it under the same run hash; on_trial_end
  /// follows with that record.
  virtual void on_trial_reused(const TrialContext& /*trial*/, const std::string& /*experiment*/) {}
  /// Training the trial threw `error`; on_trial_end follows with its failed record.
  virtual void on_trial_failed(const TrialContext& /*trial*/, const std::string& /*error*/) {}
  /// The trial's record, finished or failed, ready to store.
  virtual void on_trial_end(const TrialContext& /*trial*/, const TrialRecord& /*record*/) {}
  /// on_trial_end could not record the trial: another process had finished it.
  virtual void on_trial_not_recorded(const TrialContext& /*trial*/, const std::string& /*reason*/) {
  }
  virtual void on_sweep_end(const SweepContext& /*sweep*/, const SweepSummary& /*summary*/) {}
};

/// Passes every call on to each reporter in turn, in the order given.
class ReporterList : public Reporter {
 public:
  explicit ReporterList(std::vector<Reporter*> reporters) : reporters_(std::move(reporters)) {}

  void on_checkpoint_unreadable(const TrialContext& trial, const std::string& checkpoint,
                                const std::string& reason) override;
  void on_trial_resumed(const TrialContext& trial, int64_t epochs_done, int64_t total_epochs,
                        const std::string& checkpoint) override;
  void on_epoch(const TrialContext& trial, const EpochRecord& epoch,
                const EpochProgress& progress) override;
  void on_sweep_begin(const SweepContext& sweep) override;
  void on_trial_skipped(const TrialContext& trial, const TrialClaim& claim) override;
  void on_trial_taken_over(const TrialContext& trial, const ClaimOwner& stopped) override;
  void on_trial_needed_first(const TrialContext& trial) override;
  void on_trial_waiting(const TrialContext& trial, const ClaimOwner& holder) override;
  void on_trial_reused(const TrialContext& trial, const std::string& experiment) override;
  void on_source_trained_again(const TrialContext& trial, const std::string& path,
                               const TrialRecord& recorded, const TrialRecord& again) override;
  void on_trial_failed(const TrialContext& trial, const std::string& error) override;
  void on_trial_end(const TrialContext& trial, const TrialRecord& record) override;
  void on_trial_not_recorded(const TrialContext& trial, const std::string& reason) override;
  void on_sweep_end(const SweepContext& sweep, const SweepSummary& summary) override;

 private:
  std::vector<Reporter*> reporters_;
};

}  // namespace lowbit
