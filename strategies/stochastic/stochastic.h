#pragma once
// SP, stochastic precision (paper, Strategies). The network is split into fragments: residual
// blocks ("block", the paper's blockdrop: LayerContext::fragment) or single quantized layers
// ("layer", layerdrop: a quantized conv or linear layer together with the activation quantizer
// that feeds it, LayerContext::input_activation; an activation no quantized layer reads is a
// fragment alone). With "wa": false a layer and its input are kept or quantized together, with
// "wa": true each on its own draw: the paper's Table 3 "layer" and "layer, W/A".
// Quantizers outside any block (fragment "": AlexNet*'s layers, a starred ResNet's stem and
// classifier, a post-activation ResNet's stem activation) are layer fragments like any other under
// "layer", and always quantize under "block", which draws blocks only (blockdrop). "block" refuses
// a network with no block, where it would silently train the baseline.
// Each training step, each fragment is quantized with probability 1−δ and kept at full precision
// otherwise; with "wa": true (the default, the paper's Table 2 setting) the draw is made separately
// for its weights and its activations.
// δ decays linearly per iteration (Alg. 3): δ(t) = δ0 · max(0, 1 − t / zero_at_epoch), with t the
// trial's progress in epochs counted from 0 over all stages, step by step (epoch + step / steps
// per epoch): δ0 = 0.5 and zero_at_epoch = half the trial's epochs (the paper's 20 of 40) by
// default; from then on everything is quantized. Evaluation always sees the fully quantized
// network. The draws come from SP's own generator, seeded from the trial's seed and the step: trial
// i of every SP row sees the same draws at the same step whatever else draws random numbers (common
// random numbers across rows), and a resumed trial draws what it would have drawn.
// "sp_quantized_fraction" counts the draws that take effect: a weight draw of a fragment without
// weight quantizers (or an activation draw without activation quantizers) is not counted.

#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/strategy.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lowbit::stochastic {

struct StochasticOptions {
  bool by_block = true;                      ///< "fragment": "block" or "layer"
  bool separate_weights_activations = true;  ///< "wa"
  double delta = 0.5;                        ///< δ0
  int64_t zero_at_epoch = 0;                 ///< 0: half the trial's epochs
};

StochasticOptions read_options(const JsonReader& options);

/// δ after `progress` epochs (from 0, fractional within an epoch) of a trial of `total_epochs`.
double delta_at(const StochasticOptions& options, double progress, int64_t total_epochs);

/// The uniform [0, 1) draws of one step: `count` values from a generator seeded by the trial's
/// seed and the step, the same on every machine.
std::vector<double> step_draws(uint64_t seed, int64_t step, size_t count);

/// Which parts of a fragment the last step quantized.
struct FragmentChoice {
  bool weights = true;
  bool activations = true;
};

class StochasticStrategy : public Strategy {
 public:
  explicit StochasticStrategy(StochasticOptions options) : options_(options) {}

  void on_trial_begin(const TrainingState& state) override;
  void on_step_begin(const TrainingState& state, const Batch& batch) override;
  void on_step_end(const TrainingState& state) override;
  void on_epoch_end(const TrainingState& state, std::map<std::string, double>& metrics) override;

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
