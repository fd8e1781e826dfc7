#pragma once
// An experiment file is a matrix: models × quantizers × precisions × strategy lists, each point
// trained `trials` times. Loading validates the whole file (every component and option) before
// anything trains, and resolves each point into a RunPlan whose hash identifies it for resume.

#include <lowbit/data/dataset.h>
#include <lowbit/layers/quantized_layers.h>
#include <lowbit/results/records.h>
#include <lowbit/sdk/precision.h>
#include <lowbit/sdk/registry.h>
#include <lowbit/training/device.h>
#include <lowbit/training/options.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace lowbit {

/// A named component with its options, as the experiment file gave them.
struct ComponentChoice {
  std::string name;
  /// A strategy's column label in this file (e.g. "SP(layer)"); "" uses its registered label.
  /// Presentation only: not part of the run's hash.
  std::string label;
  nlohmann::json options = nlohmann::json::object();
  /// A model's or quantizer's own "precisions" (as written; null when it has none): they replace
  /// the experiment's for its points, e.g. a deeper KD teacher trained only at 32W32A, or
  /// Bi-Real at 1W1A beside DoReFa at 2W2A. Not part of the run's hash (the precision is).
  nlohmann::json precisions;
};

/// Where a run's weights start ("init").
enum class InitKind {
  scratch,         ///< the trial's seed draws them
  full_precision,  ///< trial i of the experiment's own 32W32A run of the model and quantizer
  checkpoint,      ///< a state dict saved from Python (a plain dict of tensors)
};

/// The experiment's "init", resolved.
struct InitOptions {
  InitKind kind = InitKind::scratch;
  /// checkpoint: the file (absolute) and the SHA-1 of its bytes, which identifies the runs.
  std::string checkpoint;
  std::string checkpoint_sha1;
  /// full_precision: the 32W32A rows (the pretrained models) train from scratch with these
  /// epochs and lr instead of the run's, which are then the quantized rows' fine-tuning budget.
  std::optional<int64_t> full_precision_epochs;
  std::optional<double> full_precision_lr;
};

/// One point of the matrix.
struct RunPlan {
  RunRecord record;
  std::string model;
  ComponentChoice quantizer;
  std::vector<ComponentChoice> strategies;
  PrecisionPolicy precision;
  /// The target stage's epochs and lr: the experiment's training, except for the 32W32A rows of
  /// an init with full-precision training of its own.
  int64_t epochs = 0;
  double learning_rate = 0;
  /// How this run's weights start: scratch for the 32W32A rows of a full_precision experiment.
  InitKind init = InitKind::scratch;
  /// full_precision: index in Experiment::runs of the 32W32A run it starts from.
  size_t full_precision_source = 0;
  /// Whether the run is some quantized run's full_precision_source (those are trained first).
  bool is_full_precision_source = false;
};

/// A matrix point left out because its quantizer cannot run it (e.g. 2W2A for a binary-only one).
struct SkippedRun {
  std::string model;
  std::string method;     ///< as RunRecord::method
  std::string precision;  ///< "2W2A"
  std::string reason;
};

struct Experiment {
  std::string name;
  std::string file;
  std::string profile;  ///< the file's profile it was loaded with ("" for none)
  std::string description;
  nlohmann::json spec;  ///< the file as read
  DataOptions data;
  TrainingOptions training;
  int64_t trials = 1;
  uint64_t seed = 0;  ///< trial i uses seed + i
  DeviceChoice device = DeviceChoice::automatic;
  InitOptions init;
  int64_t threads = 0;  ///< intra-op threads (0: every hardware thread)
  /// Every 32W32A run that a quantized run starts from comes before the runs that start from it.
  std::vector<RunPlan> runs;
  std::vector<SkippedRun> skipped;  ///< points the quantizer declined, with its reason
};

/// Parses and validates; every error is a ConfigError naming file, JSON pointer and allowed values.
Experiment parse_experiment(const nlohmann::json& spec, const std::string& file,
                            const Registry& registry);
/// Reads `path`, selects `profile` and parses it (a missing file or bad JSON is a ConfigError
/// too). `profile` must name one of the file's "profiles" when it has some, and be "" otherwise.
Experiment load_experiment(const std::string& path, const Registry& registry,
                           const std::string& profile = "");

/// A file may carry several scales of one experiment (the paper's, a CPU's) as "profiles": an
/// object of named JSON merge patches (RFC 7386: objects merge key by key, anything else
/// replaces, null removes) over the rest of the file. Returns the file with `profile` applied,
/// "profiles" removed and "-<profile>" added to its name, so that each scale is an experiment
/// of its own in a database and its stored spec parses without a profile. A file without
/// "profiles" is returned as it is when `profile` is "". ConfigError for a missing, unknown or
/// malformed profile, naming `file`, the pointer and the profiles there are.
nlohmann::json select_profile(const nlohmann::json& spec, const std::string& file,
                              const std::string& profile);
/// The names of a file's profiles, in the file's order (none when it has no "profiles").
std::vector<std::string> profile_names(const nlohmann::json& spec);

/// The index in experiment.runs of the 32W32A run without strategies of `model` with `quantizer`
/// (same options): what a quantized run of them starts from under "init": "full_precision".
std::optional<size_t> full_precision_run(const std::vector<RunPlan>& runs, const std::string& model,
                                         const ComponentChoice& quantizer);

/// Parses "<w>W<a>A" (bit-widths 1..32) into {weight bits, activation bits}; a ConfigError
/// names `file` and `pointer` otherwise.
std::pair<int, int> parse_precision(const nlohmann::json& value, const std::string& file,
                                    const std::string& pointer);

/// An experiment's name becomes file names (Slurm scripts, shard databases), a Slurm job name and
/// table headings, so it is held to characters that mean nothing to a shell, a path, Markdown or
/// LaTeX: 1-100 of [A-Za-z0-9._-], the first a letter or digit (so never "." or "..").
bool is_safe_name(const std::string& name);
/// The rule above, as an error message's "allowed" part.
extern const char* const kSafeNameRule;
/// Line breaks, tabs, escape and the other ASCII control characters: what no label or path that
/// goes into a table, a page or a script line may hold.
bool has_control_characters(const std::string& text);

}  // namespace lowbit
