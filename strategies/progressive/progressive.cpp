#include "progressive.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/registry.h>

#include <algorithm>
#include <string>

namespace lowbit::progressive {
namespace {

constexpr int64_t kMaxEpochs = 100000;

/// Bits of one tensor kind in a sub-stage: follows the sequence only if the stage lowers it.
int sub_stage_bits(int target, int previous, int64_t step_bits) {
  if (target >= previous) return target;
  return static_cast<int>(std::max<int64_t>(step_bits, target));
}

class ProgressiveStrategy : public Strategy {
 public:
  explicit ProgressiveStrategy(ProgressiveOptions options) : options_(std::move(options)) {}
  void plan(TrainingPlan& plan) override { plan = progressive_plan(plan, options_); }

 private:
  ProgressiveOptions options_;
};

}  // namespace

ProgressiveOptions read_options(const JsonReader& options) {
  ProgressiveOptions out;
  out.sequence = options.integers("sequence", out.sequence, 1, kFullPrecisionBits);
  if (out.sequence.empty()) {
    options.fail("sequence", "the sequence is empty", "decreasing bit-widths, e.g. [32, 8, 4, 2]");
  }
  for (size_t i = 1; i < out.sequence.size(); ++i) {
    if (out.sequence[i] >= out.sequence[i - 1]) {
      options.fail("sequence", "bit-widths must decrease",
                   "decreasing bit-widths, e.g. [32, 8, 4, 2]");
    }
  }
  out.epochs = options.integer("epochs", 0, 0, kMaxEpochs);
  out.learning_rate = options.number("lr", 0.0, 0.0, 100.0);
  out.budget = options.mapped_choice(
      "budget", Budget::extra, {{"extra", Budget::extra}, {"equal_total", Budget::equal_total}});
  if (out.budget == Budget::equal_total && out.epochs > 0) {
    options.fail("budget", "\"equal_total\" splits the run's epochs, so \"epochs\" cannot be set",
                 "\"extra\" with \"epochs\", or \"equal_total\" without it");
  }
  return out;
}

TrainingPlan progressive_plan(const TrainingPlan& plan, const ProgressiveOptions& options) {
  TrainingPlan out;
  int previous_weight_bits = kFullPrecisionBits;
  int previous_activation_bits = kFullPrecisionBits;
  for (size_t s = 0; s < plan.stages.size(); ++s) {
    const Stage& planned = plan.stages[s];
    std::vector<int64_t> steps = options.sequence;
    steps.push_back(0);  // the stage's own target closes it
    std::vector<Stage> subs;
    for (int64_t step_bits : steps) {
      Stage sub = planned;
      sub.weight_bits = sub_stage_bits(planned.weight_bits, previous_weight_bits, step_bits);
      sub.activation_bits =
          sub_stage_bits(planned.activation_bits, previous_activation_bits, step_bits);
      const bool same_as_before_stage = s > 0 && sub.weight_bits == previous_weight_bits &&
                                        sub.activation_bits == previous_activation_bits;
      const bool repeat = !subs.empty() && sub.weight_bits == subs.back().weight_bits &&
                          sub.activation_bits == subs.back().activation_bits;
      if (same_as_before_stage || repeat) continue;
      const std::string label =
          "pp" + std::to_string(sub.weight_bits) + "W" + std::to_string(sub.activation_bits) + "A";
      name_planned_stage(sub, label);
      subs.push_back(sub);
    }
    // The last sub-stage is the planned stage itself; the ones before it are extra stages.
    const auto count = static_cast<int64_t>(subs.size());
    const int64_t share = std::max<int64_t>(1, planned.epochs / std::max<int64_t>(1, count));
    for (int64_t i = 0; i < count; ++i) {
      Stage& sub = subs[static_cast<size_t>(i)];
      const bool closing = i + 1 == count;
      if (options.budget == Budget::equal_total) {
        sub.epochs = closing ? std::max<int64_t>(1, planned.epochs - share * (count - 1)) : share;
      } else if (!closing && options.epochs > 0) {
        sub.epochs = options.epochs;
      }
      if (!closing && options.learning_rate > 0) sub.learning_rate = options.learning_rate;
      out.stages.push_back(sub);
    }
    previous_weight_bits = planned.weight_bits;
    previous_activation_bits = planned.activation_bits;
  }
  return out;
}

std::unique_ptr<Strategy> make_progressive(const JsonReader& options) {
  return std::make_unique<ProgressiveStrategy>(read_options(options));
}

void register_progressive(Registry& registry) {
  registry.add_strategy("progressive",
                        "PP: trains through a precision sequence (default 32,8,4,2) down to the "
                        "target, each stage from the previous one; the target at the run's epochs "
                        "and lr (options: sequence, epochs and lr of the earlier stages, budget "
                        "extra|equal_total)",
                        make_progressive, "PP");
}

}  // namespace lowbit::progressive

LOWBIT_PLUGIN("progressive", lowbit::progressive::register_progressive)
