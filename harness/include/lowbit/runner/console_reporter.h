#pragma once
// The progress lines of `lowbit run`: one line per event, as a person follows a sweep.

#include <lowbit/runner/reporter.h>

#include <ostream>
#include <string>

namespace lowbit {

class ConsoleReporter : public Reporter {
 public:
  /// `out` must outlive the reporter.
  explicit ConsoleReporter(std::ostream& out) : out_(out) {}

  void on_checkpoint_unreadable(const TrialContext& trial, const std::string& checkpoint,
                                const std::string& reason) override;
  void on_trial_resumed(const TrialContext& trial, int64_t epochs_done, int64_t total_epochs,
                        const std::string& checkpoint) override;
  /// Flushed: a line per epoch is how a person sees that a long trial is alive.
  void on_epoch(const TrialContext& trial, const EpochRecord& epoch,
                const EpochProgress& progress) override;
  void on_sweep_begin(const SweepContext& sweep) override;
  void on_trial_skipped(const TrialContext& trial, const TrialClaim& claim) override;
  void on_trial_taken_over(const TrialContext& trial, const ClaimOwner& stopped) override;
  void on_trial_needed_first(const TrialContext& trial) override;
  /// Flushed: the sweep may wait a long time after it.
  void on_trial_waiting(const TrialContext& trial, const ClaimOwner& holder) override;
  void on_trial_reused(const TrialContext& trial, const std::string& experiment) override;
  void on_source_trained_again(const TrialContext& trial, const std::string& path,
                               const TrialRecord& recorded, const TrialRecord& again) override;
  void on_trial_failed(const TrialContext& trial, const std::string& error) override;
  /// A finished trial's accuracy and speed; a failed one was said by on_trial_failed.
  void on_trial_end(const TrialContext& trial, const TrialRecord& record) override;
  void on_trial_not_recorded(const TrialContext& trial, const std::string& reason) override;

 private:
  std::ostream& out_;
};

}  // namespace lowbit
