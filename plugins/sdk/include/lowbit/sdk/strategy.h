#pragma once
// A training strategy is a set of hooks around the harness's one training loop; every hook is a
// no-op by default. Strategies compose: the trainer calls each hook on every strategy of the run,
// in the order the run lists them.

#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/network.h>
#include <lowbit/sdk/precision.h>

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace lowbit {

/// A contiguous span of training with one precision and one learning-rate schedule.
struct Stage {
  /// As epochs record it: "main" for the run's own target stage until a strategy splits it.
  std::string name = "main";
  int64_t epochs = 1;
  double learning_rate = 0.1;
  int weight_bits = kFullPrecisionBits;
  int activation_bits = kFullPrecisionBits;
  /// Whether a strategy has planned this stage (name_planned_stage()).
  bool planned = false;
};

/// Where a strategy's label goes in the name of a stage planned from another planned stage.
enum class LabelPosition { first, last };

/// Names a stage a strategy plans: `label` when it comes from the run's own stage, else the
/// existing name and `label` joined by "/" ("ts-weights/pp4W4A"), so nested plans stay readable.
void name_planned_stage(Stage& stage, const std::string& label,
                        LabelPosition position = LabelPosition::last);

/// The stages of a trial. The run starts with one stage at its target precision; TS and PP
/// rewrite the list.
struct TrainingPlan {
  std::vector<Stage> stages;
};

struct Batch {
  torch::Tensor images;
  torch::Tensor labels;
};

/// How a network a strategy builds besides the student (a KD teacher) starts.
enum class NetworkStart {
  /// As the run's own networks start ("init"): from the experiment's finished 32W32A trial of
  /// that model with this trial's index, from the run's checkpoint, or from the trial's seed
  /// when the run starts from scratch. Throws, saying what is missing, when there is no such
  /// trial or checkpoint for that model.
  like_run,
  /// Like like_run, but a run that starts from scratch has no trained weights to give: throws
  /// (a fixed KD teacher must know something).
  pretrained,
  /// From the trial's seed, for a strategy that loads weights of its own (a teacher_checkpoint).
  seed,
};

class TrainingServices;

/// What the trainer shares with strategies while it trains. Strategies read it; what they may ask
/// of the trainer goes through `services`.
struct TrainingState {
  /// The student. Strategies may change its quantizers (SP) or load weights into it (KD).
  NetworkImpl* network = nullptr;
  torch::Device device = torch::kCPU;
  uint64_t seed = 0;
  const Stage* stage = nullptr;
  int64_t stage_index = 0;
  int64_t epoch = 0;           ///< counted over all stages, from 0
  int64_t epoch_in_stage = 0;  ///< from 0
  int64_t total_epochs = 0;
  int64_t step_in_epoch = 0;
  int64_t steps_per_epoch = 0;
  int64_t global_step = 0;
  /// The student's model name in the zoo (e.g. a KD teacher defaults to the same architecture).
  std::string model;
  /// The run's quantizer (null when the run has none), e.g. to quantize a KD teacher's feature
  /// maps as the student's activations are quantized.
  const Quantizer* quantizer = nullptr;
  /// The student's learning rate at this step, and the schedule's factor (lr / stage lr), so a
  /// strategy's own optimizer (KD's teacher) can follow the same schedule.
  double learning_rate = 0;
  double learning_rate_scale = 1;
  const TrainingServices* services = nullptr;
};

/// What a strategy may ask of the trainer.
class TrainingServices {
 public:
  virtual ~TrainingServices() = default;
  /// Builds a full-precision network of the zoo for this data set (e.g. a KD teacher).
  virtual std::shared_ptr<NetworkImpl> build_full_precision_network(const std::string& model,
                                                                    NetworkStart start) const = 0;
  /// Evaluates any network on the test set: {top1, top5} in percent.
  virtual std::pair<double, double> evaluate(NetworkImpl& network) const = 0;
};

/// TrainingServices from two functions: the trainer's, a benchmark's, a test's.
class FunctionTrainingServices : public TrainingServices {
 public:
  using Build =
      std::function<std::shared_ptr<NetworkImpl>(const std::string& model, NetworkStart start)>;
  using Evaluate = std::function<std::pair<double, double>(NetworkImpl& network)>;
  FunctionTrainingServices(Build build, Evaluate evaluate)
      : build_(std::move(build)), evaluate_(std::move(evaluate)) {}
  std::shared_ptr<NetworkImpl> build_full_precision_network(const std::string& model,
                                                            NetworkStart start) const override;
  std::pair<double, double> evaluate(NetworkImpl& network) const override;

 private:
  Build build_;
  Evaluate evaluate_;
};

/// A random stream of a strategy's own for one step of a trial: the same numbers for the same
/// trial seed, tag and index on every machine and standard library, and never a draw from the
/// generators that order the data, so a strategy's randomness leaves the batches alone.
/// `tag` keeps one strategy's streams apart from another's.
std::mt19937_64 own_random_stream(uint64_t seed, uint64_t tag, int64_t index);
/// The top 53 bits of a draw as a double in [0, 1): the same on every standard library, unlike
/// std::uniform_real_distribution.
double unit_interval(std::mt19937_64& stream);

class Strategy {
 public:
  virtual ~Strategy() = default;
  /// Rewrites the stage list before training starts.
  virtual void plan(TrainingPlan& /*plan*/) {}
  virtual void on_trial_begin(const TrainingState& /*state*/) {}
  /// Called after the trainer has set every quantizer to the stage's precision.
  virtual void on_stage_begin(const TrainingState& /*state*/) {}
  virtual void on_step_begin(const TrainingState& /*state*/, const Batch& /*batch*/) {}
  /// A term added to the student's loss; an undefined tensor adds nothing.
  virtual torch::Tensor extra_loss(const TrainingState& /*state*/, const Batch& /*batch*/,
                                   const NetworkOutput& /*output*/) {
    return {};
  }
  virtual void on_step_end(const TrainingState& /*state*/) {}
  /// Extra per-epoch metrics (e.g. the teacher's accuracy) to store beside the student's.
  virtual void on_epoch_end(const TrainingState& /*state*/,
                            std::map<std::string, double>& /*metrics*/) {}
  /// Parameters, besides the network's, for the trainer's optimizer.
  virtual std::vector<torch::Tensor> extra_parameters() { return {}; }
  /// Factor on the student's cross-entropy (KD's α2); the trainer multiplies the factors of all
  /// strategies of the run.
  virtual double cross_entropy_weight() const { return 1.0; }
  /// State that must survive a killed run (a KD teacher and its optimizer). Written into the
  /// trainer's per-epoch checkpoint and read back, after on_trial_begin, when a trial resumes.
  virtual void save_state(torch::serialize::OutputArchive& /*archive*/) const {}
  virtual void load_state(torch::serialize::InputArchive& /*archive*/) {}
  /// Zoo models the strategy will build besides the student (a KD teacher), so that a name the
  /// zoo lacks fails when the experiment is read, not in every trial.
  virtual std::vector<std::string> models_needed() const { return {}; }
};

using StrategyFactory = std::function<std::unique_ptr<Strategy>(const JsonReader& options)>;

}  // namespace lowbit
