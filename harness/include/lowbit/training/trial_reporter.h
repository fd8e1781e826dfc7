#pragma once
// What the trainer tells while a trial trains: the part of a sweep's reporter (runner/reporter.h)
// the trainer calls. It is declared here, below the runner, so that the trainer depends on the
// calls it makes and on nothing that prints or stores them.

#include <lowbit/results/records.h>

#include <cstdint>
#include <string>

namespace lowbit {

/// Which trial a report is about.
struct TrialContext {
  /// Prefix of its progress lines, e.g. "[run 1/4 resnet20 dorefa 2W2A trial 1/3]".
  std::string label;
  size_t run_index = 0;  ///< in Experiment::runs
  int64_t trial_index = 0;
};

/// Where an epoch leaves its trial.
struct EpochProgress {
  int64_t total_epochs = 0;  ///< over all stages
  /// Until the trial ends, at the pace of the epochs this process trained (not those before a
  /// resume).
  double eta_seconds = 0;
};

/// Every call has a no-op default; the trainer calls them in the order they happen.
class TrialReporter {
 public:
  virtual ~TrialReporter() = default;

  /// The trial's checkpoint could not be read (cut short by a full disk or a copy); it was
  /// removed and the trial starts over.
  virtual void on_checkpoint_unreadable(const TrialContext& /*trial*/,
                                        const std::string& /*checkpoint*/,
                                        const std::string& /*reason*/) {}
  /// The trial continues from its checkpoint after `epochs_done` of `total_epochs` epochs.
  virtual void on_trial_resumed(const TrialContext& /*trial*/, int64_t /*epochs_done*/,
                                int64_t /*total_epochs*/, const std::string& /*checkpoint*/) {}
  /// An epoch ended (after its evaluation and the strategies' on_epoch_end).
  virtual void on_epoch(const TrialContext& /*trial*/, const EpochRecord& /*epoch*/,
                        const EpochProgress& /*progress*/) {}
};

}  // namespace lowbit
