#pragma once
// Combines result databases (e.g. the shards of a Slurm job array) into one.

#include <lowbit/results/store.h>

#include <cstdint>
#include <string>

namespace lowbit {

struct MergeSummary {
  int64_t trials_added = 0;    ///< finished trials new to the target
  int64_t trials_present = 0;  ///< finished in the target already: skipped, never duplicated
  int64_t failures_added = 0;  ///< failed trials recorded where the target had nothing better
};

/// Adds `source`'s experiments, runs and trials to `target` (a run is the same run when its hash
/// is), with the weights saved beside the source database. Each trial is one transaction, so an
/// interrupted merge can simply be run again.
MergeSummary merge_results(ResultStore& target, ResultStore& source);

/// Throws std::invalid_argument naming `source` when it is the target's own file, however it is
/// spelled (relative, "./", symbolic links); merge would read the trials it is writing. Call it
/// before opening `source`, which must exist.
void refuse_self_merge(const ResultStore& target, const std::string& source);

}  // namespace lowbit
