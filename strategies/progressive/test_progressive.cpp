// PP: the precision sequences it plans, alone and inside TS's stages; option errors.

#include "progressive.h"

#include "../two_stage/two_stage.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/error.h>
#include <lowbit/sdk/registry.h>
#include <lowbit/sdk/testing/plugin_test.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace {

using nlohmann::json;

using lowbit::testing::plugin_registry;

lowbit::TrainingPlan planned_by(const json& options, lowbit::TrainingPlan plan) {
  auto strategy =
      plugin_registry().strategy("progressive")(lowbit::JsonReader(options, "test.json"));
  strategy->plan(plan);
  return plan;
}

std::vector<std::string> precisions(const lowbit::TrainingPlan& plan) {
  std::vector<std::string> out;
  for (const auto& stage : plan.stages) {
    out.push_back(std::to_string(stage.weight_bits) + "W" + std::to_string(stage.activation_bits) +
                  "A");
  }
  return out;
}

lowbit::TrainingPlan one_stage(int w, int a) { return {{lowbit::Stage{"main", 5, 0.1, w, a}}}; }

}  // namespace

TEST_CASE("progressive registers with the label PP", "[progressive]") {
  CHECK(plugin_registry().info(lowbit::ComponentKind::strategy, "progressive").label == "PP");
}

TEST_CASE("PP: the default sequence 32,8,4,2 ends at the run's target", "[progressive]") {
  auto plan = planned_by(json::object(), one_stage(2, 2));
  CHECK(precisions(plan) == std::vector<std::string>{"32W32A", "8W8A", "4W4A", "2W2A"});
  CHECK(plan.stages[1].name == "pp8W8A");
  CHECK(plan.stages[3].epochs == 5);
  plan = planned_by(json::object(), one_stage(4, 4));
  CHECK(precisions(plan) == std::vector<std::string>{"32W32A", "8W8A", "4W4A"});
  // "epochs" and "lr" are the earlier precisions'; the target keeps the run's.
  plan = planned_by({{"sequence", {32, 8}}, {"epochs", 2}, {"lr", 0.01}}, one_stage(3, 3));
  CHECK(precisions(plan) == std::vector<std::string>{"32W32A", "8W8A", "3W3A"});
  CHECK(plan.stages[1].epochs == 2);
  CHECK(plan.stages[1].learning_rate == Approx(0.01));
  CHECK(plan.stages[2].epochs == 5);
  CHECK(plan.stages[2].learning_rate == Approx(0.1));
  plan = planned_by(json::object(), one_stage(32, 32));
  CHECK(precisions(plan) == std::vector<std::string>{"32W32A"});
}

TEST_CASE("PP with \"budget\": \"equal_total\" splits a stage's epochs over its sub-stages",
          "[progressive]") {
  lowbit::TrainingPlan ten{{lowbit::Stage{"main", 10, 0.1, 2, 2}}};
  auto plan = planned_by({{"budget", "equal_total"}}, ten);
  REQUIRE(plan.stages.size() == 4);
  CHECK(plan.stages[0].epochs == 2);
  CHECK(plan.stages[1].epochs == 2);
  CHECK(plan.stages[2].epochs == 2);
  CHECK(plan.stages[3].epochs == 4);
  int64_t total = 0;
  for (const auto& stage : plan.stages) total += stage.epochs;
  CHECK(total == 10);
  CHECK_THROWS_WITH(planned_by({{"budget", "equal_total"}, {"epochs", 2}}, ten),
                    Catch::Contains("/budget"));
}

TEST_CASE("TS+PP: PP runs inside both TS stages; PP+TS only inside stage 1", "[progressive]") {
  json none = json::object();
  auto two_stage = lowbit::two_stage::make_two_stage(lowbit::JsonReader(none, "t"));
  auto plan = one_stage(2, 2);
  two_stage->plan(plan);
  plan = planned_by(none, plan);
  CHECK(precisions(plan) ==
        std::vector<std::string>{"32W32A", "8W32A", "4W32A", "2W32A", "2W8A", "2W4A", "2W2A"});
  CHECK(plan.stages[1].name == "ts1/pp8W32A");
  CHECK(plan.stages[4].name == "ts2/pp2W8A");

  auto reversed = planned_by(none, one_stage(2, 2));
  two_stage->plan(reversed);
  CHECK(precisions(reversed) ==
        std::vector<std::string>{"32W32A", "8W32A", "4W32A", "2W32A", "2W2A"});
}

TEST_CASE("PP: a sequence must decrease", "[progressive]") {
  json bad = {{"sequence", {8, 8, 2}}};
  CHECK_THROWS_WITH(planned_by(bad, one_stage(2, 2)),
                    Catch::Contains("/sequence") && Catch::Contains("decrease"));
  json empty = {{"sequence", json::array()}};
  CHECK_THROWS_AS(planned_by(empty, one_stage(2, 2)), lowbit::ConfigError);
}
