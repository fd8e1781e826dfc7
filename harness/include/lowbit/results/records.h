#pragma once
// What a trial produces, as stored in the results database.

#include <lowbit/util/cpu.h>
#include <lowbit/util/names.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lowbit {

/// One point of the experiment matrix: everything that defines a run, hashed for resume.
struct RunRecord {
  std::string hash;  ///< SHA-1 of config.dump(), the resolved run configuration
  std::string model;
  std::string quantizer;
  int weight_bits = 32;
  int activation_bits = 32;
  std::vector<std::string> strategies;
  std::string method;  ///< column label, e.g. "dorefa" or "dorefa+sp+kd"
  nlohmann::json config;
};

struct EpochRecord {
  int64_t epoch = 0;  ///< from 1, counted over all stages
  std::string stage;
  int weight_bits = 32;
  int activation_bits = 32;
  double learning_rate = 0;
  double train_loss = 0;
  double train_top1 = 0;
  double test_top1 = 0;
  double test_top5 = 0;
  double images_per_second = 0;
  double seconds = 0;
  std::map<std::string, double> extra;  ///< strategy metrics, e.g. "teacher_top1"
};

/// How a recorded trial ended; the database and the pages hold it by name.
enum class TrialStatus {
  finished,
  failed,  ///< TrialRecord::error says why
};

/// Each status with its name in the database: "finished", "failed".
const NameTable<TrialStatus>& trial_statuses();
std::string to_string(TrialStatus status);
/// Throws std::invalid_argument listing the names for any other text.
TrialStatus parse_trial_status(const std::string& name);

struct TrialRecord {
  int64_t trial_index = 0;
  uint64_t seed = 0;
  TrialStatus status = TrialStatus::finished;
  std::string error;  ///< why it failed
  double top1 = 0;
  double top5 = 0;
  double final_loss = 0;
  double wall_seconds = 0;
  double images_per_second = 0;
  std::string device;
  std::string torch_version;
  std::string cuda_version;                                 ///< "" on CPU builds
  nlohmann::json plugin_hashes = nlohmann::json::object();  ///< plugin file -> SHA-1
  std::map<std::string, double> extra;                      ///< final strategy metrics
  std::vector<EpochRecord> epochs;
  /// The weights it started from: "" from its seed, else e.g. "32W32A run 3f2a9c01b7e4 trial 0"
  /// or "checkpoint resnet18.pt (SHA-1 5c1e...)".
  std::string started_from;
  /// Its cost: epochs trained over all stages, and training images those epochs drew (the
  /// full-precision trial it started from not included).
  int64_t epochs_trained = 0;
  int64_t images_seen = 0;
  /// The CPU's model (util/cpu.h): float kernels differ between models, so a trial repeats bit
  /// for bit only on the same one. kUnknownCpu when unreadable or not recorded (before schema 4).
  std::string cpu = kUnknownCpu;
};

/// An experiment as stored: its name, the file it was last run from and that file's content.
struct StoredExperiment {
  std::string name;
  std::string file;
  nlohmann::json spec;
};

/// A run as stored: its database id, its experiment and what defines it.
struct StoredRun {
  int64_t id = 0;
  std::string experiment;
  RunRecord record;
};

/// A run's trials minus its baseline's, paired by trial index: the mean difference and its
/// two-sided 95% interval from Student's t (no interval from a single pair).
struct PairedDifference {
  int64_t pairs = 0;
  double mean = 0;
  double low = 0;
  double high = 0;
  bool has_interval() const { return pairs >= 2; }
  /// The interval lies wholly above or below 0.
  bool excludes_zero() const { return has_interval() && (low > 0 || high < 0); }
};

/// Mean and sample standard deviation of a run's finished trials.
struct RunSummary {
  int64_t run_id = 0;
  std::string experiment;
  std::string model;
  std::string method;
  int weight_bits = 32;
  int activation_bits = 32;
  int64_t trials = 0;
  double top1_mean = 0;
  double top1_std = 0;
  double top5_mean = 0;
  double top5_std = 0;
  double images_per_second = 0;
  /// Means over the finished trials of TrialRecord's cost (0: not recorded).
  double epochs_trained = 0;
  double images_seen = 0;
  /// Where the run's weights start, from its configuration: "" (scratch), "full_precision" or
  /// "checkpoint <SHA-1>".
  std::string init;
  /// Set by add_baseline_differences (results/paired.h) for runs with strategies.
  std::optional<PairedDifference> top1_difference;
  std::optional<PairedDifference> top5_difference;
};

}  // namespace lowbit
