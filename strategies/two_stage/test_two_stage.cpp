// TS: the stage plan it writes, alone and composed with a planner before it; option errors.

#include "two_stage.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/error.h>
#include <lowbit/sdk/registry.h>
#include <lowbit/sdk/testing/plugin_test.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace {

using nlohmann::json;

using lowbit::testing::plugin_registry;

lowbit::TrainingPlan planned_by(const json& options, lowbit::TrainingPlan plan) {
  auto strategy = plugin_registry().strategy("two_stage")(lowbit::JsonReader(options, "test.json"));
  strategy->plan(plan);
  return plan;
}

lowbit::TrainingPlan one_stage(int w, int a) { return {{lowbit::Stage{"main", 6, 0.1, w, a}}}; }

}  // namespace

TEST_CASE("two_stage registers with the label TS", "[two_stage]") {
  CHECK(lowbit_plugin_entry()->api_version == LOWBIT_PLUGIN_API_VERSION);
  CHECK(plugin_registry().info(lowbit::ComponentKind::strategy, "two_stage").label == "TS");
}

TEST_CASE(
    "TS: stage 1 quantizes weights only as an extra stage; stage 2 is the run's target "
    "stage, with its epochs and lr",
    "[two_stage]") {
  auto plan = planned_by({{"stage1", {{"epochs", 2}, {"lr", 0.05}}}}, one_stage(2, 2));
  REQUIRE(plan.stages.size() == 2);
  CHECK(plan.stages[0].name == "ts1");
  CHECK(plan.stages[0].weight_bits == 2);
  CHECK(plan.stages[0].activation_bits == 32);
  CHECK(plan.stages[0].epochs == 2);
  CHECK(plan.stages[0].learning_rate == Approx(0.05));
  CHECK(plan.stages[1].name == "ts2");
  CHECK(plan.stages[1].weight_bits == 2);
  CHECK(plan.stages[1].activation_bits == 2);
  CHECK(plan.stages[1].epochs == 6);
  CHECK(plan.stages[1].learning_rate == Approx(0.1));
  // Stage 1 defaults to the run's epochs and lr (e.g. the fine-tuning lr), never another one.
  lowbit::TrainingPlan fine_tune{{lowbit::Stage{"main", 4, 0.005, 2, 2}}};
  plan = planned_by(json::object(), fine_tune);
  CHECK(plan.stages[0].epochs == 4);
  CHECK(plan.stages[0].learning_rate == Approx(0.005));
  CHECK(plan.stages[1].epochs == 4);
  CHECK(plan.stages[1].learning_rate == Approx(0.005));
  // The target stage cannot be overridden: "stage2" is no option (the harness rejects the keys
  // a factory did not read).
  json old_options = {{"stage2", {{"epochs", 3}}}};
  lowbit::JsonReader reader(old_options, "test.json");
  plugin_registry().strategy("two_stage")(reader);
  CHECK_THROWS_WITH(reader.reject_unknown_keys(), Catch::Contains("stage2"));
}

TEST_CASE("TS with \"budget\": \"equal_total\" splits the run's epochs", "[two_stage]") {
  auto plan = planned_by({{"budget", "equal_total"}}, one_stage(2, 2));
  CHECK(plan.stages[0].epochs == 3);
  CHECK(plan.stages[1].epochs == 3);
  lowbit::TrainingPlan odd{{lowbit::Stage{"main", 5, 0.1, 2, 2}}};
  plan = planned_by({{"budget", "equal_total"}}, odd);
  CHECK(plan.stages[0].epochs == 2);
  CHECK(plan.stages[1].epochs == 3);
  CHECK_THROWS_WITH(planned_by({{"budget", "equal_total"}, {"stage1", {{"epochs", 2}}}}, odd),
                    Catch::Contains("/budget"));
  CHECK_THROWS_WITH(planned_by({{"budget", "half"}}, odd), Catch::Contains("extra, equal_total"));
}

TEST_CASE("TS: stage-1 activations at K bits, never below the target", "[two_stage]") {
  auto plan = planned_by({{"activation_bits", 8}}, one_stage(2, 4));
  CHECK(plan.stages[0].activation_bits == 8);
  plan = planned_by({{"activation_bits", 2}}, one_stage(2, 4));
  CHECK(plan.stages[0].activation_bits == 4);
  CHECK(plan.stages[0].epochs == 6);
}

TEST_CASE("TS after another planner: its stages go to stage 1, the target to stage 2",
          "[two_stage]") {
  // As PP plans them: named, and marked planned.
  lowbit::TrainingPlan progressive{{lowbit::Stage{"pp32W32A", 1, 0.1, 32, 32, true},
                                    lowbit::Stage{"pp4W4A", 1, 0.1, 4, 4, true},
                                    lowbit::Stage{"pp2W2A", 1, 0.1, 2, 2, true}}};
  auto plan = planned_by(json::object(), progressive);
  REQUIRE(plan.stages.size() == 4);
  CHECK(plan.stages[0].name == "ts1/pp32W32A");
  CHECK(plan.stages[1].weight_bits == 4);
  CHECK(plan.stages[1].activation_bits == 32);
  CHECK(plan.stages[2].weight_bits == 2);
  CHECK(plan.stages[2].activation_bits == 32);
  CHECK(plan.stages[3].name == "ts2/pp2W2A");
  CHECK(plan.stages[3].activation_bits == 2);
}

TEST_CASE("TS: bad options name the field and the allowed values", "[two_stage]") {
  json bad = {{"stage1", {{"epoch", 2}}}};
  CHECK_THROWS_WITH(planned_by(bad, one_stage(2, 2)),
                    Catch::Contains("/stage1") && Catch::Contains("epochs"));
  json range = {{"activation_bits", 40}};
  CHECK_THROWS_AS(planned_by(range, one_stage(2, 2)), lowbit::ConfigError);
}
