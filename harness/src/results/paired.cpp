#include <lowbit/results/paired.h>

#include <boost/math/distributions/students_t.hpp>

#include <cmath>
#include <map>

namespace lowbit {

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
  const boost::math::students_t_distribution<double> t(n - 1);
  const double half_width =
      boost::math::quantile(boost::math::complement(t, 0.025)) * standard_error;
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

}  // namespace

void add_baseline_differences(ResultStore& store, std::vector<RunSummary>& summaries) {
  std::map<std::string, std::vector<StoredRun>> runs_of;  // by experiment
  for (auto& summary : summaries) {
    auto [found, inserted] = runs_of.try_emplace(summary.experiment);
    if (inserted) found->second = store.runs(summary.experiment);
    const auto& runs = found->second;
    const StoredRun* run = nullptr;
    for (const auto& candidate : runs) {
      if (candidate.id == summary.run_id) run = &candidate;
    }
    if (run == nullptr || run->record.strategies.empty()) continue;
    auto baseline_config = run->record.config;
    baseline_config["strategies"] = nlohmann::json::array();
    const StoredRun* baseline = nullptr;
    for (const auto& candidate : runs) {
      // The newest such run, as the table shows the newest of runs that share a column.
      if (candidate.record.config == baseline_config &&
          (baseline == nullptr || candidate.id > baseline->id)) {
        baseline = &candidate;
      }
    }
    if (baseline == nullptr) continue;
    const auto treated = finished_trials(store, run->id);
    const auto reference = finished_trials(store, baseline->id);
    std::vector<std::pair<double, double>> top1, top5;
    for (const auto& [index, values] : treated) {
      auto match = reference.find(index);
      if (match == reference.end()) continue;
      top1.emplace_back(values.first, match->second.first);
      top5.emplace_back(values.second, match->second.second);
    }
    if (top1.empty()) continue;
    summary.top1_difference = paired_difference(top1);
    summary.top5_difference = paired_difference(top5);
  }
}

}  // namespace lowbit
