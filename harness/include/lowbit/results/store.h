#pragma once
// The results database (SQLite, WAL). Every write is one transaction, and a trial is written only
// once it has finished, with its epochs and the run's refreshed mean/std: a killed sweep leaves
// either the whole trial or nothing, and re-running skips what is there.

#include <lowbit/results/records.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace lowbit {

class ResultStore {
 public:
  /// Opens or creates the database (and its parent folder); throws std::runtime_error naming the
  /// file when it cannot, or when its schema version is one this build does not know.
  explicit ResultStore(const std::string& path);
  ~ResultStore();
  ResultStore(const ResultStore&) = delete;
  ResultStore& operator=(const ResultStore&) = delete;

  const std::string& path() const { return path_; }

  /// Returns the experiment's id, creating it on first use (keyed by name; the latest spec and
  /// file are kept).
  int64_t ensure_experiment(const std::string& name, const std::string& file,
                            const nlohmann::json& spec);
  /// Returns the run's id, creating it on first use (keyed by experiment and run hash).
  int64_t ensure_run(int64_t experiment_id, const RunRecord& run);
  bool trial_finished(int64_t run_id, int64_t trial_index);
  /// Writes the trial, its epochs and the run's summary in one transaction. A trial that was
  /// recorded as failed before is replaced; a finished one is never written twice (throws).
  void record_trial(int64_t run_id, const TrialRecord& trial);

  /// Summaries of runs with at least one finished trial; all experiments when `experiment` is "".
  std::vector<RunSummary> summaries(const std::string& experiment = "");
  std::vector<std::string> experiment_names();
  std::vector<StoredExperiment> experiments();
  /// Runs (with or without finished trials) in id order; all experiments when `experiment` is "".
  std::vector<StoredRun> runs(const std::string& experiment = "");
  /// Trials of a run in index order, epochs included.
  std::vector<TrialRecord> trials(int64_t run_id);

 private:
  void execute(const std::string& sql);
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace lowbit
