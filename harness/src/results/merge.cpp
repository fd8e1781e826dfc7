#include <lowbit/results/layout.h>
#include <lowbit/results/merge.h>
#include <lowbit/util/atomic_file.h>

#include <boost/filesystem.hpp>
#include <fmt/format.h>

#include <fstream>
#include <stdexcept>
#include <vector>

namespace lowbit {
namespace bfs = boost::filesystem;
namespace {

/// Copies a file the source database keeps beside it, if it has one and the target does not.
void copy_beside(const std::string& from, const std::string& to) {
  if (!bfs::is_regular_file(from) || bfs::exists(to)) return;
  std::ifstream in(from, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot read", from));
  write_file_atomically(to, [&](const ByteSink& sink) {
    std::vector<char> buffer(1 << 20);
    while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
      sink(buffer.data(), static_cast<size_t>(in.gcount()));
    }
    if (in.bad()) throw std::runtime_error(fmt::format("{}: read error", from));
  });
}

}  // namespace

void refuse_self_merge(const ResultStore& target, const std::string& source) {
  if (bfs::canonical(source) == bfs::canonical(target.path())) {
    throw std::invalid_argument(fmt::format("{}: cannot merge a database into itself", source));
  }
}

MergeSummary merge_results(ResultStore& target, ResultStore& source) {
  MergeSummary summary;
  for (const auto& experiment : source.experiments()) {
    const int64_t experiment_id =
        target.ensure_experiment(experiment.name, experiment.file, experiment.spec);
    for (const auto& run : source.runs(experiment.name)) {
      const int64_t run_id = target.ensure_run(experiment_id, run.record);
      const auto& hash = run.record.hash;
      copy_beside(model_spec_path(source.path(), hash), model_spec_path(target.path(), hash));
      for (const auto& trial : source.trials(run.id)) {
        if (target.trial_finished(run_id, trial.trial_index)) {
          if (trial.status == TrialStatus::finished) ++summary.trials_present;
          continue;
        }
        // Weights first: a trial row without its weights would break `lowbit export`.
        copy_beside(trial_weights_path(source.path(), hash, trial.trial_index),
                    trial_weights_path(target.path(), hash, trial.trial_index));
        target.record_trial(run_id, trial);
        ++(trial.status == TrialStatus::finished ? summary.trials_added : summary.failures_added);
      }
    }
  }
  return summary;
}

}  // namespace lowbit
