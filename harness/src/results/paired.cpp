#include <lowbit/results/paired.h>

#include <boost/math/distributions/students_t.hpp>

#include <cmath>
#include <map>

namespace lowbit {

double student_t_975(double degrees_of_freedom) {
  const boost::math::students_t_distribution<double> t(degrees_of_freedom);
  return boost::math::quantile(boost::math::complement(t, 0.025));
}

PairedDifference paired_difference(
    const std::vector<std::pair<double, double>>& treated_and_baseline) {
  PairedDifference result;
  result.pairs = static_cast<int64_t>(treated_and_baseline.size());
  if (result.pairs == 0) return result;
  double sum = 0;
  for (const auto& [treated, baseline] : treated_and_baseline) sum += treated - baseline;
  result.mean = sum / static_cast<double>(result.pairs);
  result.low = result.high = result.mean;
  if (!result.has_interval()) return result;
  double squares = 0;
  for (const auto& [treated, baseline] : treated_and_baseline) {
    squares += std::pow(treated - baseline - result.mean, 2);
  }
  const double n = static_cast<double>(result.pairs);
  const double standard_error = std::sqrt(squares / (n - 1)) / std::sqrt(n);
  const double half_width = student_t_975(n - 1) * standard_error;
  result.low = result.mean - half_width;
  result.high = result.mean + half_width;
  return result;
}

namespace {

/// Finished trials by index: {top-1, top-5}.
std::map<int64_t, std::pair<double, double>> finished_trials(ResultStore& store, int64_t run_id) {
  std::map<int64_t, std::pair<double, double>> out;
  for (const auto& trial : store.trials(run_id)) {
    if (trial.status == TrialStatus::finished) out[trial.trial_index] = {trial.top1, trial.top5};
  }
  return out;
}

/// Fills `summary`'s differences to `reference`, paired by trial index over the finished trials
/// both have.
void add_paired_differences(ResultStore& store, RunSummary& summary, const StoredRun& reference) {
  const auto treated = finished_trials(store, summary.run_id);
  const auto baseline = finished_trials(store, reference.id);
  std::vector<std::pair<double, double>> top1, top5;
  for (const auto& [index, values] : treated) {
    auto match = baseline.find(index);
    if (match == baseline.end()) continue;
    top1.emplace_back(values.first, match->second.first);
    top5.emplace_back(values.second, match->second.second);
  }
  if (top1.empty()) return;
  summary.top1_difference = paired_difference(top1);
  summary.top5_difference = paired_difference(top5);
}

/// The stored run of `summary`, among its experiment's runs (cached per experiment).
class ExperimentRuns {
 public:
  explicit ExperimentRuns(ResultStore& store) : store_(store) {}
  const std::vector<StoredRun>& of(const std::string& experiment) {
    auto [found, inserted] = runs_of_.try_emplace(experiment);
    if (inserted) found->second = store_.runs(experiment);
    return found->second;
  }

 private:
  ResultStore& store_;
  std::map<std::string, std::vector<StoredRun>> runs_of_;
};

const StoredRun* find_run(const std::vector<StoredRun>& runs, int64_t id) {
  for (const auto& candidate : runs) {
    if (candidate.id == id) return &candidate;
  }
  return nullptr;
}

/// The newest run that `accept` takes, as the table shows the newest of runs sharing a column.
template <typename Accept>
const StoredRun* newest_run(const std::vector<StoredRun>& runs, Accept accept) {
  const StoredRun* found = nullptr;
  for (const auto& candidate : runs) {
    if (accept(candidate) && (found == nullptr || candidate.id > found->id)) found = &candidate;
  }
  return found;
}

}  // namespace

void add_baseline_differences(ResultStore& store, std::vector<RunSummary>& summaries) {
  ExperimentRuns runs(store);
  for (auto& summary : summaries) {
    const auto& experiment_runs = runs.of(summary.experiment);
    const auto* run = find_run(experiment_runs, summary.run_id);
    if (run == nullptr || run->record.strategies.empty()) continue;
    auto baseline_config = run->record.config;
    baseline_config["strategies"] = nlohmann::json::array();
    const auto* baseline = newest_run(experiment_runs, [&](const StoredRun& candidate) {
      return candidate.record.config == baseline_config;
    });
    if (baseline != nullptr) add_paired_differences(store, summary, *baseline);
  }
}

void add_method_differences(ResultStore& store, std::vector<RunSummary>& summaries,
                            const std::string& method) {
  ExperimentRuns runs(store);
  for (auto& summary : summaries) {
    const auto& experiment_runs = runs.of(summary.experiment);
    const auto* run = find_run(experiment_runs, summary.run_id);
    if (run == nullptr || run->record.method == method) continue;
    const auto* reference = newest_run(experiment_runs, [&](const StoredRun& candidate) {
      return candidate.record.method == method && candidate.record.model == run->record.model &&
             candidate.record.weight_bits == run->record.weight_bits &&
             candidate.record.activation_bits == run->record.activation_bits;
    });
    if (reference != nullptr) add_paired_differences(store, summary, *reference);
  }
}

}  // namespace lowbit
