#pragma once
// The results database (SQLite, WAL). Every write is one transaction, and a trial is written only
// once it has finished, with its epochs and the run's refreshed mean/std: a killed sweep leaves
// either the whole trial or nothing, and re-running skips what is there.

#include <lowbit/results/records.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace lowbit {

/// Seconds since the Unix epoch: the clock claims' heartbeats are kept in.
double unix_seconds();

/// record_trial found the trial finished already (another process recorded it first).
class TrialAlreadyFinished : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

enum class StoreAccess {
  read_write,  ///< creates the file and its schema, migrates an older one (run, merge)
  read_only,  ///< opens an existing lowbit database without changing a byte (table, report, export)
};

/// Who trains a trial: a process on a host, and a random token of that process's sweep (so a
/// recycled pid is never taken for the old owner).
struct ClaimOwner {
  std::string host;
  int64_t pid = 0;
  std::string token;
};

struct TrialClaim {
  enum class Outcome { claimed, finished, owned_elsewhere } outcome = Outcome::claimed;
  /// owned_elsewhere: who holds it; claimed with taken_over: whose dead claim was replaced.
  ClaimOwner holder;
  bool taken_over = false;
};

class ResultStore {
 public:
  /// Opens the database. read_write creates it (and its parent folder) when missing; both throw
  /// naming the file when it cannot be opened, is not a lowbit database (another program's
  /// tables), is ":memory:", or has a schema version this build does not know.
  explicit ResultStore(const std::string& path, StoreAccess access = StoreAccess::read_write);
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
  /// Removes a finished trial's record (and its epochs) so that it can be trained again: a
  /// 32W32A trial whose weights file is missing (a database committed without its weights).
  void reopen_trial(int64_t run_id, int64_t trial_index);
  /// Writes the trial, its epochs and the run's summary in one transaction, and drops its claim.
  /// A trial that was recorded as failed before is replaced; a finished one is never written
  /// twice (throws TrialAlreadyFinished).
  void record_trial(int64_t run_id, const TrialRecord& trial);

  /// Random id made with the schema and kept for the file's life; "" for a version-1 database
  /// opened read-only. Checkpoints carry it, so another database's are refused.
  std::string database_id();

  /// Claims a trial for `owner` in one transaction: `finished` if it is recorded already,
  /// `owned_elsewhere` if another owner holds it and `alive(holder, last heartbeat in Unix
  /// seconds)` says that owner still lives; otherwise the claim is ours (a dead one is replaced).
  TrialClaim claim_trial(int64_t run_id, int64_t trial_index, const ClaimOwner& owner,
                         const std::function<bool(const ClaimOwner&, double)>& alive);
  /// Marks every claim of `token` as still alive (the heartbeat).
  void renew_claims(const std::string& token);
  /// Drops a claim of `token` (a trial given up without a record, e.g. when the disk is full).
  void release_claim(int64_t run_id, int64_t trial_index, const std::string& token);

  /// Summaries of runs with at least one finished trial; all experiments when `experiment` is "".
  std::vector<RunSummary> summaries(const std::string& experiment = "");
  std::vector<std::string> experiment_names();
  /// Throws std::invalid_argument naming the database, `experiment` and the stored experiments
  /// when the database has no experiment of that name; "" (all experiments) always passes.
  void require_experiment(const std::string& experiment);
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
