#pragma once
// PP, progressive precision (paper, Strategies): a precision sequence such as 32→8→4→2; each
// sub-stage is initialised from the previous one (the trainer hands the weights on) and the last
// one is the stage's own target.
//
// PP refines every stage already planned (so TS+PP, with "two_stage" listed first, runs PP inside
// both TS stages). Within a stage, only the tensors whose bits this stage lowers, compared with
// the stage before it (the first stage: compared with full precision), follow the sequence; the
// others keep their bits. A sub-stage at the precision of the stage before it is skipped (it has
// already been trained), as is a repeat of the sub-stage before. Examples, sequence 32,8,4,2:
//   2W2A            → 32W32A, 8W8A, 4W4A, 2W2A
//   TS: 2W32A, 2W2A → 32W32A, 8W32A, 4W32A, 2W32A | 2W8A, 2W4A, 2W2A
// Sequence entries below a stage's target are dropped; the target always ends the stage.
//
// Budget: the sub-stage that closes a planned stage is that stage, with its epochs and lr (for
// the run's target: the run's, exactly as the baseline row). The sub-stages before it are extra
// stages: "epochs" and "lr" set each of them, by default the planned stage's. "budget":
// "equal_total" splits the planned stage's epochs E over its n sub-stages instead: floor(E/n)
// each (at least 1), the rest to the closing one.

#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/strategy.h>

#include <memory>
#include <vector>

namespace lowbit::progressive {

enum class Budget {
  extra,        ///< earlier precisions train on top of the planned stage's epochs
  equal_total,  ///< all sub-stages share the planned stage's epochs
};

struct ProgressiveOptions {
  std::vector<int64_t> sequence{32, 8, 4, 2};  ///< strictly decreasing bit-widths
  int64_t epochs = 0;        ///< epochs of each earlier sub-stage; 0: the planned stage's epochs
  double learning_rate = 0;  ///< lr of each earlier sub-stage; 0: the planned stage's lr
  Budget budget = Budget::extra;
};

/// Reads {"sequence": [32, 8, 4, 2], "epochs", "lr", "budget": "extra" | "equal_total"}.
ProgressiveOptions read_options(const JsonReader& options);

TrainingPlan progressive_plan(const TrainingPlan& plan, const ProgressiveOptions& options);

std::unique_ptr<Strategy> make_progressive(const JsonReader& options);

}  // namespace lowbit::progressive
