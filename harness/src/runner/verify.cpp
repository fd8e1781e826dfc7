#include <lowbit/results/layout.h>
#include <lowbit/results/paired.h>
#include <lowbit/runner/sweep.h>
#include <lowbit/runner/verify.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/precision.h>
#include <lowbit/util/cpu.h>

#include <boost/filesystem.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lowbit {
namespace bfs = boost::filesystem;
namespace {

/// A trial in both databases: run hash and trial index.
using TrialKey = std::pair<std::string, int64_t>;

/// A fresh folder under the system's temporary folder, removed with its content when it dies.
class ScratchFolder {
 public:
  ScratchFolder()
      : path_(bfs::temp_directory_path() / bfs::unique_path("lowbit-verify-%%%%-%%%%-%%%%")) {
    bfs::create_directories(path_);
  }
  ~ScratchFolder() {
    boost::system::error_code ignored;
    bfs::remove_all(path_, ignored);
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  bfs::path path_;
};

std::string short_hash(const std::string& hash) { return hash.substr(0, 12); }

/// "32W32A run 3f2a9c01b7e4 trial 0", as trials record where they started.
std::string full_precision_origin(const std::string& hash, int64_t trial_index) {
  return fmt::format("32W32A run {} trial {}", short_hash(hash), trial_index);
}

/// The stored runs of the experiment by hash.
std::map<std::string, StoredRun> stored_runs(ResultStore& stored, const std::string& experiment) {
  std::map<std::string, StoredRun> runs;
  for (auto& run : stored.runs(experiment)) runs.emplace(run.record.hash, std::move(run));
  return runs;
}

std::optional<TrialRecord> finished_trial(ResultStore& store, int64_t run_id, int64_t trial_index) {
  for (auto& trial : store.trials(run_id)) {
    if (trial.trial_index == trial_index && trial.status == TrialStatus::finished) return trial;
  }
  return std::nullopt;
}

/// The threads of a recorded CPU device, "cpu (2 threads)": 2; none for another device.
std::optional<int64_t> recorded_threads(const std::string& device) {
  long long threads = 0;
  if (std::sscanf(device.c_str(), "cpu (%lld thread", &threads) == 1 && threads > 0) {
    return threads;
  }
  return std::nullopt;
}

/// The device a scratch sweep asks for to repeat a trial recorded on `device`.
std::string device_for(const std::string& recorded, const VerifyOptions& options) {
  if (!options.device.empty()) return options.device;
  return recorded.rfind("cuda", 0) == 0 ? "auto" : "cpu";
}

bool same_value(double expected, double got) {
  return expected == got || (std::isnan(expected) && std::isnan(got));
}

/// The first difference of a bit-for-bit comparison and how many more; "" when there is none.
std::string first_difference(const TrialRecord& expected, const TrialRecord& got) {
  std::vector<std::string> differences;
  auto compare = [&](const std::string& what, double stored, double retrained) {
    if (!same_value(stored, retrained)) {
      differences.push_back(fmt::format("{}: expected {}, got {}", what, stored, retrained));
    }
  };
  if (expected.epochs.size() != got.epochs.size()) {
    differences.push_back(
        fmt::format("{} epochs stored, {} re-trained", expected.epochs.size(), got.epochs.size()));
  }
  for (size_t i = 0; i < std::min(expected.epochs.size(), got.epochs.size()); ++i) {
    const auto& stored = expected.epochs[i];
    const auto& retrained = got.epochs[i];
    compare(fmt::format("epoch {} test top-1", stored.epoch), stored.test_top1,
            retrained.test_top1);
    compare(fmt::format("epoch {} test top-5", stored.epoch), stored.test_top5,
            retrained.test_top5);
    compare(fmt::format("epoch {} train loss", stored.epoch), stored.train_loss,
            retrained.train_loss);
  }
  compare("final top-1", expected.top1, got.top1);
  compare("final top-5", expected.top5, got.top5);
  if (differences.empty()) return "";
  if (differences.size() == 1) return differences.front();
  return fmt::format("{} (and {} more difference{})", differences.front(), differences.size() - 1,
                     differences.size() == 2 ? "" : "s");
}

std::string libtorch_build(const TrialRecord& trial) {
  return trial.cuda_version.empty()
             ? trial.torch_version
             : fmt::format("{} (CUDA {})", trial.torch_version, trial.cuda_version);
}

/// What differs between where the trial was recorded and where it was re-trained, each as
/// "recorded on X, re-trained on Y"; none when bit for bit applies.
std::vector<std::string> setting_differences(const TrialRecord& expected, const TrialRecord& got) {
  std::vector<std::string> differences;
  if (got.device != expected.device) {
    differences.push_back(
        fmt::format("recorded on {}, re-trained on {}", expected.device, got.device));
  }
  if (libtorch_build(got) != libtorch_build(expected)) {
    differences.push_back(fmt::format("recorded with LibTorch {}, re-trained with {}",
                                      libtorch_build(expected), libtorch_build(got)));
  }
  if (expected.cpu == kUnknownCpu) {
    differences.push_back("recorded on an unknown CPU");
  } else if (got.cpu != expected.cpu) {
    differences.push_back(fmt::format("recorded on {}, re-trained on {}", expected.cpu, got.cpu));
  }
  return differences;
}

/// The scratch database's copy of a 32W32A trial that a chosen trial starts from: its record and
/// its weights, so that the sweep finds it finished and loads those weights.
void copy_source_trial(ResultStore& scratch, int64_t experiment_id, const StoredRun& run,
                       const TrialRecord& trial, const std::string& weights) {
  const auto target = trial_weights_path(scratch.path(), run.record.hash, trial.trial_index);
  bfs::create_directories(bfs::path(target).parent_path());
  bfs::copy_file(weights, target);
  scratch.record_trial(scratch.ensure_run(experiment_id, run.record), trial);
}

/// One scratch sweep: the chosen trials that ask for one device and thread count.
struct SweepGroup {
  std::string device;
  int64_t threads = -1;
  std::set<TrialKey> trials;
};

}  // namespace

Experiment stored_experiment(ResultStore& stored, const std::string& name,
                             const Registry& registry) {
  stored.require_experiment(name);
  for (const auto& experiment : stored.experiments()) {
    if (experiment.name == name)
      return parse_experiment(experiment.spec, experiment.file, registry);
  }
  throw std::logic_error("require_experiment passed an experiment that is not there");
}

TrialSelection select_trials(ResultStore& stored, const Experiment& experiment, int64_t count) {
  auto runs = stored_runs(stored, experiment.name);
  TrialSelection selection;
  std::set<std::string> resolved;
  for (size_t r = 0; r < experiment.runs.size(); ++r) {
    const auto& hash = experiment.runs[r].record.hash;
    resolved.insert(hash);
    const auto found = runs.find(hash);
    if (found == runs.end()) continue;
    std::vector<TrialRecord> finished;
    for (auto& trial : stored.trials(found->second.id)) {
      if (trial.status == TrialStatus::finished) finished.push_back(std::move(trial));
    }
    selection.finished_trials += static_cast<int64_t>(finished.size());
    std::vector<double> top1;
    for (const auto& trial : finished) top1.push_back(trial.top1);
    for (const auto& trial : finished) {
      if (static_cast<int64_t>(selection.trials.size()) >= count) break;
      selection.trials.push_back(TrialToVerify{r, found->second, trial, top1});
    }
  }
  for (const auto& [hash, run] : runs) {
    if (resolved.count(hash) > 0) continue;
    const auto trials = stored.trials(run.id);
    if (std::any_of(trials.begin(), trials.end(), [](const TrialRecord& trial) {
          return trial.status == TrialStatus::finished;
        })) {
      ++selection.runs_not_resolved;
    }
  }
  if (!selection.trials.empty()) return selection;
  if (selection.runs_not_resolved > 0) {
    throw std::runtime_error(fmt::format(
        "{}: the finished trials of experiment {} are all in runs that its stored spec does not "
        "resolve to now ({} runs): the code resolves the configuration differently from when "
        "they were recorded, so they cannot be re-trained as they were",
        stored.path(), experiment.name, selection.runs_not_resolved));
  }
  throw std::invalid_argument(fmt::format("{}: experiment {} has no finished trial to verify",
                                          stored.path(), experiment.name));
}

std::optional<PredictionInterval> prediction_interval(const std::vector<double>& values) {
  if (values.size() < 2) return std::nullopt;
  const double n = static_cast<double>(values.size());
  PredictionInterval interval;
  interval.values = static_cast<int64_t>(values.size());
  for (double value : values) interval.mean += value;
  interval.mean /= n;
  double squares = 0;
  for (double value : values) squares += (value - interval.mean) * (value - interval.mean);
  const double half_width =
      student_t_975(n - 1) * std::sqrt(squares / (n - 1)) * std::sqrt(1 + 1 / n);
  interval.low = interval.mean - half_width;
  interval.high = interval.mean + half_width;
  return interval;
}

TrialVerdict judge_trial(const TrialToVerify& trial, const TrialRecord& got) {
  TrialVerdict verdict;
  verdict.trial = trial;
  verdict.got = got;
  const auto& expected = trial.stored;
  const auto differences = setting_differences(expected, got);
  if (differences.empty()) {
    verdict.test = VerifyTest::bit_for_bit;
    verdict.test_reason = fmt::format("same device {}, LibTorch {}, CPU {}", got.device,
                                      libtorch_build(got), got.cpu);
  } else {
    verdict.test = VerifyTest::within_spread;
    verdict.test_reason = join(differences, "; ");
  }
  if (got.status != TrialStatus::finished) {
    verdict.mismatch = "re-training failed: " + got.error;
  } else if (verdict.test == VerifyTest::bit_for_bit) {
    verdict.mismatch = first_difference(expected, got);
  } else {
    verdict.interval = prediction_interval(trial.run_top1);
    if (!verdict.interval) {
      verdict.mismatch = fmt::format("no spread to compare with ({} trial{})",
                                     trial.run_top1.size(), trial.run_top1.size() == 1 ? "" : "s");
    } else if (!(got.top1 >= verdict.interval->low && got.top1 <= verdict.interval->high)) {
      verdict.mismatch = fmt::format(
          "top-1 {} outside the 95% prediction interval [{:.2f}, {:.2f}] of the run's {} stored "
          "trials",
          got.top1, verdict.interval->low, verdict.interval->high, verdict.interval->values);
    }
  }
  verdict.passed = verdict.mismatch.empty();
  return verdict;
}

int64_t VerifyReport::mismatches() const {
  return std::count_if(verdicts.begin(), verdicts.end(),
                       [](const TrialVerdict& verdict) { return !verdict.passed; });
}

VerifyReport verify_trials(const Registry& registry, const PluginLoader& plugins,
                           ResultStore& stored, const Experiment& experiment,
                           const std::vector<TrialToVerify>& trials, const VerifyOptions& options) {
  ScratchFolder folder;
  ResultStore scratch(folder.file("verify.db"));
  // A stored trial index beyond today's "trials" is still trained (the count is not in the hash).
  Experiment scratch_experiment = experiment;
  for (const auto& trial : trials) {
    scratch_experiment.trials = std::max(scratch_experiment.trials, trial.stored.trial_index + 1);
  }
  const auto runs = stored_runs(stored, experiment.name);
  const int64_t experiment_id =
      scratch.ensure_experiment(experiment.name, experiment.file, experiment.spec);

  std::set<TrialKey> chosen;
  for (const auto& trial : trials) chosen.insert({trial.run.record.hash, trial.stored.trial_index});

  // The 32W32A trials that quantized ones start from: copied when stored with their weights,
  // else trained first by the sweep. Besides a run's own source, those of the experiment's other
  // models, which a strategy may ask for (a KD teacher).
  std::vector<std::string> notes(trials.size());
  std::set<TrialKey> copied;
  for (size_t i = 0; i < trials.size(); ++i) {
    const auto& run = experiment.runs[trials[i].run_index];
    if (run.init != InitKind::full_precision) continue;
    const int64_t t = trials[i].stored.trial_index;
    std::set<size_t> sources;
    for (const auto& other : experiment.runs) {
      if (auto source = full_precision_run(experiment.runs, other.model, run.quantizer)) {
        sources.insert(*source);
      }
    }
    for (size_t source : sources) {
      const auto& hash = experiment.runs[source].record.hash;
      const bool own = source == run.full_precision_source;
      const auto origin = full_precision_origin(hash, t);
      const TrialKey key{hash, t};
      if (chosen.count(key) > 0) {
        if (own) notes[i] = fmt::format("started from its source {} as re-trained here", origin);
        continue;
      }
      if (copied.count(key) > 0) {
        if (own) notes[i] = "started from the stored weights of " + origin;
        continue;
      }
      const auto weights = trial_weights_path(stored.path(), hash, t);
      const auto stored_run = runs.find(hash);
      const auto record = stored_run == runs.end()
                              ? std::nullopt
                              : finished_trial(stored, stored_run->second.id, t);
      if (record && bfs::is_regular_file(weights)) {
        copy_source_trial(scratch, experiment_id, stored_run->second, *record, weights);
        copied.insert(key);
        if (own) notes[i] = "started from the stored weights of " + origin;
      } else if (own) {
        notes[i] =
            fmt::format("its source {} was trained first in the scratch database ({})", origin,
                        record ? "no stored weights at " + weights
                               : std::string("not finished in the database"));
      }
    }
  }

  std::vector<SweepGroup> groups;
  for (const auto& trial : trials) {
    const auto device = device_for(trial.stored.device, options);
    const int64_t threads =
        options.threads >= 0 ? options.threads : recorded_threads(trial.stored.device).value_or(-1);
    auto group = std::find_if(groups.begin(), groups.end(), [&](const SweepGroup& candidate) {
      return candidate.device == device && candidate.threads == threads;
    });
    if (group == groups.end()) group = groups.insert(groups.end(), SweepGroup{device, threads, {}});
    group->trials.insert({trial.run.record.hash, trial.stored.trial_index});
  }

  VerifyReport report;
  SweepRunner runner(registry, plugins, scratch);
  for (const auto& group : groups) {
    SweepOptions sweep;
    sweep.device = group.device;
    sweep.threads = group.threads;
    sweep.progress = options.progress;
    sweep.train_only = [&group](const RunPlan& run, int64_t trial_index) {
      return group.trials.count({run.record.hash, trial_index}) > 0;
    };
    const auto summary = runner.run(scratch_experiment, sweep);
    report.trials_trained += summary.trials_run + summary.trials_failed;
  }

  const auto retrained = stored_runs(scratch, experiment.name);
  for (size_t i = 0; i < trials.size(); ++i) {
    const auto& trial = trials[i];
    TrialRecord got;
    got.status = TrialStatus::failed;
    got.error = "the scratch sweep recorded no such trial";
    const auto run = retrained.find(trial.run.record.hash);
    if (run != retrained.end()) {
      for (auto& candidate : scratch.trials(run->second.id)) {
        if (candidate.trial_index == trial.stored.trial_index) got = std::move(candidate);
      }
    }
    auto verdict = judge_trial(trial, got);
    verdict.note = notes[i];
    report.verdicts.push_back(std::move(verdict));
  }
  return report;
}

std::string format_verdict(const TrialVerdict& verdict) {
  const auto& run = verdict.trial.run.record;
  const auto& expected = verdict.trial.stored;
  const auto& got = verdict.got;
  std::string text =
      fmt::format("run {} {} {} {} trial {}: {}\n", run.model, run.method,
                  precision_label(run.weight_bits, run.activation_bits), short_hash(run.hash),
                  expected.trial_index, verdict.passed ? "PASS" : "MISMATCH");
  text += fmt::format("  expected  top-1 {} top-5 {}\n", expected.top1, expected.top5);
  if (got.status == TrialStatus::finished) {
    text += fmt::format("  got       top-1 {} top-5 {}\n", got.top1, got.top5);
  } else {
    text += "  got       nothing (re-training failed)\n";
  }
  if (verdict.test == VerifyTest::bit_for_bit) {
    text += fmt::format("  test      bit for bit: {}\n", verdict.test_reason);
  } else if (verdict.interval) {
    text += fmt::format(
        "  test      within spread: {}; 95% prediction interval of the run's {} stored trials "
        "[{:.2f}, {:.2f}]\n",
        verdict.test_reason, verdict.interval->values, verdict.interval->low,
        verdict.interval->high);
  } else {
    text += fmt::format("  test      within spread: {}\n", verdict.test_reason);
  }
  if (!verdict.mismatch.empty()) text += fmt::format("  why       {}\n", verdict.mismatch);
  if (!verdict.note.empty()) text += fmt::format("  note      {}\n", verdict.note);
  return text;
}

}  // namespace lowbit
