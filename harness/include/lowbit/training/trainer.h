#pragma once
// The one training loop. Strategies change what it does only through their hooks.

#include <lowbit/data/dataset.h>
#include <lowbit/results/records.h>
#include <lowbit/sdk/network.h>
#include <lowbit/sdk/strategy.h>
#include <lowbit/training/checkpoint.h>
#include <lowbit/training/options.h>
#include <lowbit/training/trial_reporter.h>

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lowbit {

/// What one trial trains.
struct TrialSpec {
  uint64_t seed = 0;
  TrialContext trial;  ///< which trial it is, as reports name it
  Stage target;        ///< the run's precision, epochs and learning rate before strategies plan
  std::function<std::shared_ptr<NetworkImpl>()> build_network;
  /// Strategies' other networks (TrainingState::build_full_precision_network).
  std::function<std::shared_ptr<NetworkImpl>(const std::string& model, NetworkStart start)>
      build_full_precision;
  /// Copies the weights the trial starts from into its freshly built network; empty for a trial
  /// that starts from its seed.
  std::function<void(NetworkImpl& network)> load_initial_weights;
  /// What load_initial_weights loads, as the trial records it (TrialRecord::started_from).
  std::string started_from;
  std::vector<Strategy*> strategies;
  /// Where the trained network's weights go when the trial ends ("" keeps none).
  std::string weights_path;
  /// The trial's per-epoch checkpoint ("" keeps none). If it exists when the trial starts, the
  /// trial continues from it; the caller removes it once the trial is recorded. An unreadable
  /// (truncated) one is reported and the trial starts over.
  std::string checkpoint_path;
  /// Written into each checkpoint; a checkpoint carrying another id (another database's) is
  /// refused rather than resumed.
  std::string database_id;
  /// The student's model name, passed on to strategies (TrainingState::model).
  std::string model;
  /// The run's quantizer, passed on to strategies (TrainingState::quantizer); may be null.
  std::shared_ptr<const Quantizer> quantizer;
};

struct Accuracy {
  double top1 = 0;
  double top5 = 0;
};

class Trainer {
 public:
  /// `data` must already be on `device`. Progress goes to `reporter` when it is not null.
  Trainer(TrainingOptions options, const DataSplits& data, torch::Device device,
          TrialReporter* reporter);

  /// Trains one trial from scratch (or from its checkpoint), deterministically for its seed on the
  /// CPU. Throws on failure (e.g. a diverged loss); the caller decides how to record it.
  TrialRecord train(const TrialSpec& spec);

  /// Top-1/top-5 accuracy in percent on the test split, or on its first `limit` images when
  /// `limit` is positive; leaves the network's mode as it was.
  Accuracy evaluate(NetworkImpl& network, int64_t limit = 0);

  /// Learning rate at a point of a stage under the configured schedule.
  double learning_rate(const Stage& stage, int64_t epoch_in_stage, int64_t step_in_epoch,
                       int64_t steps_per_epoch) const;

 private:
  /// Trains one epoch, then evaluates on `test_images` of the test split (0: all of it).
  EpochRecord train_epoch(NetworkImpl& network, torch::optim::SGD& optimizer, TrainingState& state,
                          const TrialSpec& spec, int64_t test_images);
  int64_t steps_per_epoch() const;
  /// The trial's network, with the weights it starts from, on the device.
  std::shared_ptr<NetworkImpl> build_student(const TrialSpec& spec) const;
  /// Continues from the checkpoint an interrupted attempt left, if any, and reports it: the
  /// epochs recorded so far go into `trial`, the counters into `state`. Returns where training
  /// picks up.
  TrainingPosition resume(TrialCheckpoint& checkpoint, const TrialSpec& spec,
                          const TrainingPlan& plan, NetworkImpl& network, TrainingState& state,
                          TrialRecord& trial);

  TrainingOptions options_;
  const DataSplits& data_;
  torch::Device device_;
  TrialReporter& reporter_;
};

/// Sets every weight quantizer to the stage's weight bits and every activation quantizer to its
/// activation bits.
void apply_stage_precision(NetworkImpl& network, const Stage& stage);

/// The device as trials record it. On the CPU it includes LibTorch's intra-op thread count: the
/// order of float reductions depends on it, so a CPU trial repeats bit for bit only with the same
/// count, and its img/s depends on it too. E.g. "cpu (2 threads)", "cuda:0".
std::string device_description(torch::Device device);

/// How many samples have their label as the top-1 logit, and among the top-5.
std::pair<int64_t, int64_t> count_correct(const torch::Tensor& logits, const torch::Tensor& labels);

}  // namespace lowbit
