#include "two_stage.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/registry.h>

#include <algorithm>

namespace lowbit::two_stage {
namespace {

constexpr int64_t kMaxEpochs = 100000;

StageOverride read_override(const JsonReader& reader) {
  StageOverride stage;
  stage.epochs = reader.integer("epochs", 0, 0, kMaxEpochs);
  stage.learning_rate = reader.number("lr", 0.0, 0.0, 100.0);
  reader.reject_unknown_keys();
  return stage;
}

Stage with_override(Stage stage, const StageOverride& override_with, const std::string& name) {
  if (override_with.epochs > 0) stage.epochs = override_with.epochs;
  if (override_with.learning_rate > 0) stage.learning_rate = override_with.learning_rate;
  name_planned_stage(stage, name, LabelPosition::first);
  return stage;
}

class TwoStageStrategy : public Strategy {
 public:
  explicit TwoStageStrategy(TwoStageOptions options) : options_(options) {}
  void plan(TrainingPlan& plan) override { plan = two_stage_plan(plan, options_); }

 private:
  TwoStageOptions options_;
};

}  // namespace

TwoStageOptions read_options(const JsonReader& options) {
  TwoStageOptions out;
  out.activation_bits = static_cast<int>(
      options.integer("activation_bits", kFullPrecisionBits, 1, kFullPrecisionBits));
  out.stage1 = read_override(options.object("stage1"));
  out.budget = options.mapped_choice(
      "budget", Budget::extra, {{"extra", Budget::extra}, {"equal_total", Budget::equal_total}});
  if (out.budget == Budget::equal_total && out.stage1.epochs > 0) {
    options.fail("budget",
                 "\"equal_total\" splits the run's epochs, so stage1.epochs cannot be set",
                 "\"extra\" with stage1.epochs, or \"equal_total\" without it");
  }
  return out;
}

TrainingPlan two_stage_plan(const TrainingPlan& plan, const TwoStageOptions& options) {
  if (plan.stages.empty()) return plan;
  TrainingPlan out;
  for (const auto& planned : plan.stages) {
    Stage first = with_override(planned, options.stage1, "ts1");
    first.activation_bits = std::max(options.activation_bits, planned.activation_bits);
    if (options.budget == Budget::equal_total)
      first.epochs = std::max<int64_t>(1, planned.epochs / 2);
    out.stages.push_back(first);
  }
  // The target stage trains as the baseline does: its epochs and lr are never overridden.
  Stage second = with_override(plan.stages.back(), StageOverride{}, "ts2");
  if (options.budget == Budget::equal_total) {
    second.epochs = std::max<int64_t>(1, second.epochs - second.epochs / 2);
  }
  out.stages.push_back(second);
  return out;
}

std::unique_ptr<Strategy> make_two_stage(const JsonReader& options) {
  return std::make_unique<TwoStageStrategy>(read_options(options));
}

void register_two_stage(Registry& registry) {
  registry.add_strategy("two_stage",
                        "TS: stage 1 quantizes weights only, stage 2 weights and activations from "
                        "stage 1's weights, at the run's epochs and lr (options: activation_bits, "
                        "stage1 epochs and lr, budget extra|equal_total)",
                        make_two_stage, "TS");
}

}  // namespace lowbit::two_stage

// Another plugin's test may compile this planner in beside its own entry point.
#ifndef LOWBIT_NO_PLUGIN_ENTRY
LOWBIT_PLUGIN("two_stage", lowbit::two_stage::register_two_stage)
#endif
