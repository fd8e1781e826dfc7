#pragma once
// TS, two-stage optimisation (paper, Strategies): stage 1 quantizes the weights only (activations
// at full precision, or at `activation_bits`), stage 2 starts from stage 1's weights (the trainer
// hands them on) and quantizes weights and activations to the run's target.
//
// Composition with other planners (TS+PP) is defined by the order of the run's strategy list:
//  - "two_stage" first (the plain run is one stage): stage 1 = that stage with stage-1 activations,
//    stage 2 = that stage; a later "progressive" then runs its precision sequence inside each stage
//    (weights 32→8→4→2 in stage 1, activations 32→8→4→2 in stage 2).
//  - "two_stage" after "progressive": stage 1 = every stage planned so far with stage-1
//    activations (PP on the weights), stage 2 = the final target stage only.
// Stage-1 activations are never below the target's: max(activation_bits, target activation bits).
//
// Budget: stage 2 is the run's target stage, with the run's epochs and learning-rate schedule,
// exactly as the baseline row trains it. Stage 1 is an extra stage before it: "stage1": {"epochs",
// "lr"} set it, by default the run's epochs and lr (the fine-tuning lr when the run fine-tunes).
// "budget": "equal_total" splits the run's epochs instead, for compute-matched comparisons:
// stage 1 gets floor(E/2) (at least 1) and stage 2 the rest (exact when TS is the first planner).

#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/strategy.h>

#include <memory>

namespace lowbit::two_stage {

struct StageOverride {
  int64_t epochs = 0;        ///< 0: keep the planned stage's epochs
  double learning_rate = 0;  ///< 0: keep the planned stage's learning rate
};

enum class Budget {
  extra,        ///< stage 1 is trained on top of the target stage's epochs
  equal_total,  ///< stage 1 and stage 2 share the target stage's epochs
};

struct TwoStageOptions {
  int activation_bits = kFullPrecisionBits;  ///< stage 1's activations
  StageOverride stage1;
  Budget budget = Budget::extra;
};

/// Reads {"activation_bits", "stage1": {"epochs", "lr"}, "budget": "extra" | "equal_total"}.
TwoStageOptions read_options(const JsonReader& options);

/// The two-stage plan built from `plan` (see the header comment).
TrainingPlan two_stage_plan(const TrainingPlan& plan, const TwoStageOptions& options);

std::unique_ptr<Strategy> make_two_stage(const JsonReader& options);

}  // namespace lowbit::two_stage
