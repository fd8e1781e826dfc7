#pragma once
// Differences to the baseline, paired by trial: trial i of every run of an experiment shares its
// seed (and data order), so "run minus baseline" per trial removes most of the trial-to-trial
// spread that two independent means would keep.

#include <lowbit/results/records.h>
#include <lowbit/results/store.h>

#include <string>
#include <utility>
#include <vector>

namespace lowbit {

/// Student's t quantile for two-sided 95% intervals, t_{0.975} with `degrees_of_freedom` (> 0):
/// 12.706 at 1, 4.303 at 2, 1.960 in the limit.
double student_t_975(double degrees_of_freedom);

/// Mean of `treated[i] - baseline[i]` with a two-sided 95% Student-t interval (n - 1 degrees of
/// freedom); a single pair has no interval.
PairedDifference paired_difference(
    const std::vector<std::pair<double, double>>& treated_and_baseline);

/// For every summary of a run with strategies, its top-1/top-5 difference to the baseline run:
/// the run of the same experiment whose configuration is the same with no strategies (same model,
/// quantizer and options, precision, quantize_all, data, training, seed). Trials are paired by
/// trial index; only finished trials present in both count. Runs without a baseline keep none.
void add_baseline_differences(ResultStore& store, std::vector<RunSummary>& summaries);

/// For every summary, its difference to the run of the same experiment, model and precision
/// whose method label is `method` (e.g. "dorefa+KD(fixed)"), paired by trial index as above:
/// how a paper's claim between two methods, neither the baseline, is read ("joint KD beats a
/// fixed teacher"). The reference run itself, and runs without such a reference, keep none.
void add_method_differences(ResultStore& store, std::vector<RunSummary>& summaries,
                            const std::string& method);

}  // namespace lowbit
