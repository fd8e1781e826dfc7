#include <lowbit/runner/store_reporter.h>

namespace lowbit {

void StoreReporter::on_trial_end(const TrialContext& trial, const TrialRecord& record) {
  store_.record_trial(run_ids_.at(trial.run_index), record);
}

}  // namespace lowbit
