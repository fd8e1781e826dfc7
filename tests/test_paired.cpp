// Paired differences to the baseline: the statistics, which run is a run's baseline, and how the
// table shows them (`lowbit table --vs-baseline`).

#include "test_support.h"

#include <lowbit/results/paired.h>
#include <lowbit/results/store.h>
#include <lowbit/results/table.h>
#include <lowbit/util/hash.h>

#include <catch2/catch.hpp>

#include <map>

namespace {

using lowbit::PairedDifference;
using lowbit::RunSummary;

lowbit::RunRecord run_record(const std::string& method, std::vector<std::string> strategies,
                             int bits = 2) {
  lowbit::RunRecord run;
  run.model = "resnet20";
  run.quantizer = "dorefa";
  run.weight_bits = bits;
  run.activation_bits = bits;
  run.strategies = strategies;
  run.method = method;
  run.config = {{"model", "resnet20"},     {"quantizer", "dorefa"},    {"weight_bits", bits},
                {"activation_bits", bits}, {"strategies", strategies}, {"seed", 0}};
  run.hash = lowbit::sha1_hex(run.config.dump());
  return run;
}

void record(lowbit::ResultStore& store, int64_t run, int64_t index, double top1, double top5) {
  lowbit::TrialRecord trial;
  trial.trial_index = index;
  trial.top1 = top1;
  trial.top5 = top5;
  store.record_trial(run, trial);
}

}  // namespace

TEST_CASE("a paired difference has a Student-t 95% interval", "[paired]") {
  // Differences 1, 2, 3: mean 2, sd 1, t(2 df, 0.975) = 4.302653.
  auto d = lowbit::paired_difference({{2, 1}, {13, 11}, {4, 1}});
  CHECK(d.pairs == 3);
  CHECK(d.mean == Approx(2.0));
  CHECK(d.low == Approx(2.0 - 4.302653 / std::sqrt(3.0)).epsilon(1e-6));
  CHECK(d.high == Approx(2.0 + 4.302653 / std::sqrt(3.0)).epsilon(1e-6));
  CHECK_FALSE(d.excludes_zero());
  // Ten pairs of +1 ± 0.1: clearly above 0.
  std::vector<std::pair<double, double>> pairs;
  for (int i = 0; i < 10; ++i) pairs.emplace_back(50.0 + (i % 2 ? 1.1 : 0.9), 50.0);
  CHECK(lowbit::paired_difference(pairs).excludes_zero());
  // One pair: a difference, no interval.
  auto single = lowbit::paired_difference({{70.0, 68.5}});
  CHECK(single.mean == Approx(1.5));
  CHECK_FALSE(single.has_interval());
  CHECK_FALSE(single.excludes_zero());
}

TEST_CASE("differences pair each trial with the same trial of the run's own baseline", "[paired]") {
  lowbit::testing::TemporaryFolder folder;
  lowbit::ResultStore store(folder.file("results.db"));
  const auto experiment = store.ensure_experiment("e", "e.json", nlohmann::json::object());
  const auto baseline = store.ensure_run(experiment, run_record("dorefa", {}));
  const auto sp = store.ensure_run(experiment, run_record("dorefa+SP", {"stochastic"}));
  const auto other_bits = store.ensure_run(experiment, run_record("dorefa", {}, 4));
  // Trial-to-trial spread is large, the paired difference small and steady.
  record(store, baseline, 0, 60.0, 90.0);
  record(store, baseline, 1, 70.0, 91.0);
  record(store, baseline, 2, 65.0, 92.0);
  record(store, sp, 0, 61.0, 90.5);
  record(store, sp, 1, 71.1, 91.5);
  record(store, sp, 2, 65.9, 92.5);
  record(store, sp, 3, 99.0, 99.0);  // no baseline trial 3: not paired
  record(store, other_bits, 0, 10.0, 10.0);

  auto summaries = store.summaries("e");
  lowbit::add_baseline_differences(store, summaries);
  const RunSummary* with_sp = nullptr;
  for (const auto& summary : summaries) {
    if (summary.method == "dorefa+SP") {
      with_sp = &summary;
    } else {
      CHECK_FALSE(summary.top1_difference.has_value());  // baselines are compared with nothing
    }
  }
  REQUIRE(with_sp != nullptr);
  REQUIRE(with_sp->top1_difference.has_value());
  CHECK(with_sp->top1_difference->pairs == 3);
  CHECK(with_sp->top1_difference->mean == Approx(1.0));
  CHECK(with_sp->top1_difference->excludes_zero());
  CHECK(with_sp->top5_difference->mean == Approx(0.5));

  const auto table = lowbit::render_table(summaries, lowbit::TableFormat::markdown);
  INFO(table);
  CHECK_THAT(table, Catch::Contains("+1.00 [+0.75, +1.25]†"));
  CHECK_THAT(table, Catch::Contains("65.00±5.00"));  // the baseline column itself
  CHECK_THAT(table, Catch::Contains("95% t-interval"));
  const auto csv = lowbit::render_table(summaries, lowbit::TableFormat::csv);
  CHECK_THAT(csv, Catch::Contains("resnet20 dorefa+SP diff low"));
  // Without differences the table is as before.
  CHECK_THAT(lowbit::render_table(store.summaries("e"), lowbit::TableFormat::markdown),
             !Catch::Contains("95% t-interval"));
}

TEST_CASE("differences to a named method pair trials with that method's run", "[paired]") {
  lowbit::testing::TemporaryFolder folder;
  lowbit::ResultStore store(folder.file("results.db"));
  const auto experiment = store.ensure_experiment("e", "e.json", nlohmann::json::object());
  const auto baseline = store.ensure_run(experiment, run_record("dorefa", {}));
  const auto joint = store.ensure_run(experiment, run_record("dorefa+KD", {"kd"}));
  const auto fixed = store.ensure_run(experiment, run_record("dorefa+KD(fixed)", {"kd", "x"}));
  const auto fixed_4bit =
      store.ensure_run(experiment, run_record("dorefa+KD(fixed)", {"kd", "x"}, 4));
  record(store, baseline, 0, 60.0, 90.0);
  record(store, baseline, 1, 62.0, 90.0);
  record(store, joint, 0, 64.0, 91.0);
  record(store, joint, 1, 67.0, 91.0);
  record(store, fixed, 0, 63.0, 90.0);
  record(store, fixed, 1, 64.0, 90.0);
  record(store, fixed_4bit, 0, 99.0, 99.0);
  auto summaries = store.summaries("e");
  lowbit::add_method_differences(store, summaries, "dorefa+KD(fixed)");
  std::map<std::string, const RunSummary*> by_method;
  for (const auto& s : summaries) {
    if (s.weight_bits == 2) by_method[s.method] = &s;
  }
  REQUIRE(by_method.size() == 3);
  // Joint minus fixed per trial: 1 and 3.
  REQUIRE(by_method["dorefa+KD"]->top1_difference);
  CHECK(by_method["dorefa+KD"]->top1_difference->mean == Approx(2.0));
  CHECK(by_method["dorefa+KD"]->top1_difference->pairs == 2);
  // The baseline is compared too (it is not the reference here), the reference itself is not.
  CHECK(by_method["dorefa"]->top1_difference->mean == Approx(-2.5));
  CHECK_FALSE(by_method["dorefa+KD(fixed)"]->top1_difference);
  // Another precision's run is not a reference for 2W2A.
  for (const auto& s : summaries) {
    if (s.weight_bits == 4) CHECK_FALSE(s.top1_difference);
  }
  lowbit::TableOptions options;
  options.reference_method = "dorefa+KD(fixed)";
  const auto text = lowbit::render_table(summaries, lowbit::TableFormat::markdown, options);
  CHECK_THAT(text, Catch::Contains("+2.00") &&
                       Catch::Contains("Runs show their difference to dorefa+KD(fixed) of the "
                                       "same model and precision, paired by trial"));
}
