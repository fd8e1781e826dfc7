#include <lowbit/runner/reporter.h>

namespace lowbit {

void ReporterList::on_checkpoint_unreadable(const TrialContext& trial,
                                            const std::string& checkpoint,
                                            const std::string& reason) {
  for (auto* reporter : reporters_) reporter->on_checkpoint_unreadable(trial, checkpoint, reason);
}

void ReporterList::on_trial_resumed(const TrialContext& trial, int64_t epochs_done,
                                    int64_t total_epochs, const std::string& checkpoint) {
  for (auto* reporter : reporters_) {
    reporter->on_trial_resumed(trial, epochs_done, total_epochs, checkpoint);
  }
}

void ReporterList::on_epoch(const TrialContext& trial, const EpochRecord& epoch,
                            const EpochProgress& progress) {
  for (auto* reporter : reporters_) reporter->on_epoch(trial, epoch, progress);
}

void ReporterList::on_sweep_begin(const SweepContext& sweep) {
  for (auto* reporter : reporters_) reporter->on_sweep_begin(sweep);
}

void ReporterList::on_trial_skipped(const TrialContext& trial, const TrialClaim& claim) {
  for (auto* reporter : reporters_) reporter->on_trial_skipped(trial, claim);
}

void ReporterList::on_trial_taken_over(const TrialContext& trial, const ClaimOwner& stopped) {
  for (auto* reporter : reporters_) reporter->on_trial_taken_over(trial, stopped);
}

void ReporterList::on_trial_needed_first(const TrialContext& trial) {
  for (auto* reporter : reporters_) reporter->on_trial_needed_first(trial);
}

void ReporterList::on_trial_reused(const TrialContext& trial, const std::string& experiment) {
  for (auto* reporter : reporters_) reporter->on_trial_reused(trial, experiment);
}

void ReporterList::on_source_trained_again(const TrialContext& trial, const std::string& path,
                                           const TrialRecord& recorded, const TrialRecord& again) {
  for (auto* reporter : reporters_) reporter->on_source_trained_again(trial, path, recorded, again);
}

void ReporterList::on_trial_waiting(const TrialContext& trial, const ClaimOwner& holder) {
  for (auto* reporter : reporters_) reporter->on_trial_waiting(trial, holder);
}

void ReporterList::on_trial_failed(const TrialContext& trial, const std::string& error) {
  for (auto* reporter : reporters_) reporter->on_trial_failed(trial, error);
}

void ReporterList::on_trial_end(const TrialContext& trial, const TrialRecord& record) {
  for (auto* reporter : reporters_) reporter->on_trial_end(trial, record);
}

void ReporterList::on_trial_not_recorded(const TrialContext& trial, const std::string& reason) {
  for (auto* reporter : reporters_) reporter->on_trial_not_recorded(trial, reason);
}

void ReporterList::on_sweep_end(const SweepContext& sweep, const SweepSummary& summary) {
  for (auto* reporter : reporters_) reporter->on_sweep_end(sweep, summary);
}

}  // namespace lowbit
