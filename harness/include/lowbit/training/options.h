#pragma once
// How a run trains (the experiment's "training" object): epochs, batches, the optimizer, the
// learning-rate schedule, augmentation and speed settings. The trainer reads them; the
// experiment file is only one way to fill them.

#include <lowbit/data/augment.h>
#include <lowbit/training/performance.h>
#include <lowbit/util/names.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

struct OptimizerOptions {
  double learning_rate = 0.1;
  double momentum = 0.9;
  /// Plain momentum by default, as the paper trains; Nesterov is an option.
  bool nesterov = false;
  double weight_decay = 1e-4;
};

/// How the learning rate falls over a stage.
enum class ScheduleKind {
  cosine,     ///< annealed per step from the stage's rate to 0
  multistep,  ///< the stage's rate times gamma at each milestone epoch
};

/// Each schedule with its name in experiment files ("cosine", "multistep"), in that order.
const NameTable<ScheduleKind>& schedule_kinds();
std::string to_string(ScheduleKind kind);
/// Throws std::invalid_argument listing the names for any other text.
ScheduleKind parse_schedule_kind(const std::string& name);

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::cosine;
  std::vector<int64_t> milestones;  ///< multistep: epochs at which lr *= gamma
  double gamma = 0.1;
};

struct TrainingOptions {
  int64_t epochs = 10;
  int64_t batch_size = 128;
  int64_t eval_batch_size = 1000;
  /// Test images evaluated after each epoch but the trial's last (0: the whole test split), for
  /// the model and for anything a strategy evaluates (a KD teacher). The last epoch, whose
  /// accuracy is the trial's, always evaluates the whole split, so this buys cheaper curve points
  /// without changing a result: evaluation leaves training untouched, and so this is not part of
  /// a run's identity.
  int64_t curve_test_images = 0;
  /// Stops each epoch after this many steps (0: whole epoch); for smoke tests.
  int64_t max_steps_per_epoch = 0;
  OptimizerOptions optimizer;
  ScheduleOptions schedule;
  AugmentOptions augment;
  PerformanceOptions performance;
};

}  // namespace lowbit
