#pragma once
// The results database as a reporter: each trial, finished or failed, is recorded with its epochs
// when it ends, in one transaction (ResultStore::record_trial), so a killed sweep leaves a whole
// trial or none. Epochs in flight live in the trial's checkpoint, not in the database.

#include <lowbit/results/store.h>
#include <lowbit/runner/reporter.h>

#include <cstdint>
#include <vector>

namespace lowbit {

class StoreReporter : public Reporter {
 public:
  /// `run_ids[r]` is the database id of the sweep's run r (TrialContext::run_index); the store
  /// and the ids must outlive the reporter.
  StoreReporter(ResultStore& store, const std::vector<int64_t>& run_ids)
      : store_(store), run_ids_(run_ids) {}

  /// Throws TrialAlreadyFinished when another process recorded the trial as finished first.
  void on_trial_end(const TrialContext& trial, const TrialRecord& record) override;

 private:
  ResultStore& store_;
  const std::vector<int64_t>& run_ids_;
};

}  // namespace lowbit
