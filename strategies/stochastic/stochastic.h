#pragma once
// SP, stochastic precision (paper, Strategies). The network is split into fragments: residual
// blocks ("block", the paper's blockdrop: LayerContext::fragment) or single quantized layers
// ("layer", layerdrop: each weight or activation quantizer, keyed by LayerContext::name — the
// models do not say which activation feeds which convolution, so each is its own layer).
// Quantizers outside any block (fragment "") are not fragments and always quantize.
// Each training step, each fragment is quantized with probability 1−δ and kept at full precision
// otherwise; with "wa": true the draw is made separately for its weights and its activations.
// δ(epoch) = δ0 · max(0, 1 − epoch / zero_at_epoch), epochs counted from 0 over the whole trial:
// δ0 = 0.5 and zero_at_epoch = half the trial's epochs (the paper's 20 of 40) by default; from
// then on everything is quantized. Evaluation always sees the fully quantized network.
// The draws use LibTorch's global CPU generator, which the trainer's checkpoint saves.

#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/strategy.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::stochastic {

struct StochasticOptions {
  bool by_block = true;   ///< "fragment": "block" or "layer"
  bool separate_weights_activations = false;  ///< "wa"
  double delta = 0.5;      ///< δ0
  int64_t zero_at_epoch = 0;  ///< 0: half the trial's epochs
};

StochasticOptions read_options(const JsonReader& options);

/// δ at an epoch (from 0) of a trial of `total_epochs`.
double delta_at(const StochasticOptions& options, int64_t epoch, int64_t total_epochs);

/// Which parts of a fragment the last step quantized.
struct FragmentChoice {
  bool weights = true;
  bool activations = true;
};

class StochasticStrategy : public Strategy {
 public:
  explicit StochasticStrategy(StochasticOptions options) : options_(options) {}

  void on_trial_begin(TrainingState& state) override;
  void on_step_begin(TrainingState& state, const Batch& batch) override;
  void on_step_end(TrainingState& state) override;
  void on_epoch_end(TrainingState& state, std::map<std::string, double>& metrics) override;

  /// The fragments, in network order, and what the last step chose for each.
  const std::vector<std::string>& fragments() const { return fragment_names_; }
  const std::map<std::string, FragmentChoice>& last_choice() const { return last_choice_; }

 private:
  struct Fragment {
    std::vector<std::shared_ptr<TensorQuantizerImpl>> weights;
    std::vector<std::shared_ptr<TensorQuantizerImpl>> activations;
  };

  StochasticOptions options_;
  std::vector<std::string> fragment_names_;
  std::map<std::string, Fragment> fragments_;
  std::map<std::string, FragmentChoice> last_choice_;
  int64_t decisions_ = 0;
  int64_t quantized_decisions_ = 0;
};

std::unique_ptr<Strategy> make_stochastic(const JsonReader& options);

}  // namespace lowbit::stochastic
