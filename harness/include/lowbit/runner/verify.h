#pragma once
// `lowbit verify`: re-trains stored trials of an experiment in a scratch database and compares
// each with its record. Where the device, thread count, LibTorch build and CPU model are the
// recorded ones a trial must repeat bit for bit (every epoch's test top-1/top-5 and train loss,
// the final top-1/top-5); elsewhere its final top-1 must lie in the 95% prediction interval of
// its run's stored trials. The user's database is only read.

#include <lowbit/experiment/experiment.h>
#include <lowbit/plugins/plugin_loader.h>
#include <lowbit/results/records.h>
#include <lowbit/results/store.h>
#include <lowbit/sdk/registry.h>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace lowbit {

/// The experiment `name` of `stored`, parsed from its stored spec (the file as it was read when
/// it ran, so the file on disk may since have changed or gone) with today's components. Throws
/// std::invalid_argument naming the database and its experiments when it has none of that name.
Experiment stored_experiment(ResultStore& stored, const std::string& name,
                             const Registry& registry);

/// A stored finished trial to re-train.
struct TrialToVerify {
  size_t run_index = 0;  ///< in Experiment::runs
  StoredRun run;         ///< as stored (its id is the stored database's)
  TrialRecord stored;    ///< the record to compare with
  /// Final top-1 of every finished trial of the run in the database: the spread.
  std::vector<double> run_top1;
};

struct TrialSelection {
  std::vector<TrialToVerify> trials;
  /// Finished trials the experiment's runs hold in the database, chosen or not.
  int64_t finished_trials = 0;
  /// Stored runs of the experiment with finished trials that it does not resolve to now (an
  /// older version of the file, or code that resolves a configuration differently): not verified.
  int64_t runs_not_resolved = 0;
};

/// The first `count` finished trials in sweep order: the experiment's runs in its order (the
/// 32W32A runs others start from first), trial indices ascending. Throws std::invalid_argument
/// when the experiment has no finished trial, std::runtime_error when it has some, but none in a
/// run that its stored spec resolves to now.
TrialSelection select_trials(ResultStore& stored, const Experiment& experiment, int64_t count);

/// Mean ± t_{0.975, n-1} · s · sqrt(1 + 1/n): where one more value of the same kind lies with
/// 95% probability (s the sample standard deviation of the n values).
struct PredictionInterval {
  int64_t values = 0;
  double mean = 0;
  double low = 0;
  double high = 0;
};

/// The 95% Student-t prediction interval of `values`; none below 2 values (no spread).
std::optional<PredictionInterval> prediction_interval(const std::vector<double>& values);

enum class VerifyTest {
  bit_for_bit,    ///< same device and threads, LibTorch (and CUDA) and CPU as recorded
  within_spread,  ///< anything else: the run's 95% prediction interval of final top-1
};

struct TrialVerdict {
  TrialToVerify trial;
  TrialRecord got;  ///< the re-trained record (failed, with its error, when training failed)
  VerifyTest test = VerifyTest::bit_for_bit;
  /// Why that test: "same device cpu (2 threads), LibTorch 1.13.1, CPU AMD EPYC 7B13", or what
  /// differs, e.g. "recorded on Intel Xeon ..., re-trained on AMD EPYC 7B13".
  std::string test_reason;
  std::optional<PredictionInterval> interval;  ///< within_spread with 2 or more stored trials
  bool passed = false;
  /// Why it did not pass: the first difference ("epoch 2 test top-1: expected 81.25, got 81.3")
  /// and how many more, the interval it missed, "no spread to compare with (1 trial)", or
  /// "re-training failed: ...". "" when it passed.
  std::string mismatch;
  /// Where a quantized trial's weights came from: the stored ones of its 32W32A source, or its
  /// source trained first in the scratch database; "" for a trial that starts from its seed.
  std::string note;
};

/// Compares a re-trained record with the stored one, choosing the test (see VerifyTest).
TrialVerdict judge_trial(const TrialToVerify& trial, const TrialRecord& got);

struct VerifyOptions {
  /// "auto", "cpu" or "cuda"; "" as each trial recorded it (a CUDA trial asks for "auto", so a
  /// machine without a GPU re-trains it on the CPU and compares with the spread).
  std::string device;
  /// Intra-op threads; < 0 as each trial recorded it ("cpu (2 threads)": 2), so that bit for bit
  /// is possible.
  int64_t threads = -1;
  /// The scratch sweeps' progress lines go here when it is not null.
  std::ostream* progress = nullptr;
};

struct VerifyReport {
  std::vector<TrialVerdict> verdicts;  ///< in the order of the trials given
  /// Trials trained in the scratch database: the chosen ones and any 32W32A source whose stored
  /// weights were missing.
  int64_t trials_trained = 0;
  int64_t mismatches() const;
};

/// Re-trains `trials` (from select_trials on `stored`) in a scratch database in a fresh
/// temporary folder, removed afterwards, and judges each. A quantized trial whose 32W32A source
/// trial has its weights in `stored`'s folder starts from a copy of them (the source's record is
/// copied too, so only the chosen trial trains); otherwise the source trains first. Trials are
/// re-trained in one sweep per device and thread count they ask for.
VerifyReport verify_trials(const Registry& registry, const PluginLoader& plugins,
                           ResultStore& stored, const Experiment& experiment,
                           const std::vector<TrialToVerify>& trials, const VerifyOptions& options);

/// A verdict as `lowbit verify` prints it:
///   run resnet20 dorefa 32W32A 3f2a9c01b7e4 trial 0: PASS
///     expected  top-1 87.45 top-5 99.6
///     got       top-1 87.45 top-5 99.6
///     test      bit for bit: same device cpu (2 threads), LibTorch 1.13.1, CPU AMD EPYC 7B13
/// then "why" (a mismatch) and "note" lines where there are some.
std::string format_verdict(const TrialVerdict& verdict);

}  // namespace lowbit
