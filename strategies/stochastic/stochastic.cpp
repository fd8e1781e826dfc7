#include "stochastic.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/registry.h>

#include <algorithm>

namespace lowbit::stochastic {

StochasticOptions read_options(const JsonReader& options) {
  StochasticOptions out;
  out.by_block = options.choice("fragment", "block", {"block", "layer"}) == "block";
  out.separate_weights_activations = options.boolean("wa", false);
  out.delta = options.number("delta", 0.5, 0.0, 1.0);
  out.zero_at_epoch = options.integer("zero_at_epoch", 0, 0, 100000);
  return out;
}

double delta_at(const StochasticOptions& options, int64_t epoch, int64_t total_epochs) {
  const int64_t zero_at =
      options.zero_at_epoch > 0 ? options.zero_at_epoch : std::max<int64_t>(1, total_epochs / 2);
  const double remaining = 1.0 - static_cast<double>(epoch) / static_cast<double>(zero_at);
  return options.delta * std::max(0.0, remaining);
}

void StochasticStrategy::on_trial_begin(TrainingState& state) {
  fragment_names_.clear();
  fragments_.clear();
  for (auto& quantizer : tensor_quantizers(*state.network)) {
    const auto& context = quantizer->context();
    if (context.fragment.empty()) continue;
    const std::string key = options_.by_block ? context.fragment : context.name;
    if (fragments_.count(key) == 0) fragment_names_.push_back(key);
    auto& fragment = fragments_[key];
    if (std::dynamic_pointer_cast<WeightQuantizerImpl>(quantizer)) {
      fragment.weights.push_back(quantizer);
    } else {
      fragment.activations.push_back(quantizer);
    }
  }
}

void StochasticStrategy::on_step_begin(TrainingState& state, const Batch& /*batch*/) {
  const double delta = delta_at(options_, state.epoch, state.total_epochs);
  const int64_t draws_per_fragment = options_.separate_weights_activations ? 2 : 1;
  // Drawn even when δ is 0, so the generator's stream does not depend on the schedule.
  auto draws = torch::rand({static_cast<int64_t>(fragment_names_.size()), draws_per_fragment},
                           torch::TensorOptions().dtype(torch::kDouble));
  auto values = draws.accessor<double, 2>();
  last_choice_.clear();
  for (size_t f = 0; f < fragment_names_.size(); ++f) {
    const auto& name = fragment_names_[f];
    FragmentChoice choice;
    choice.weights = values[f][0] >= delta;
    choice.activations = values[f][draws_per_fragment - 1] >= delta;
    for (auto& quantizer : fragments_[name].weights) quantizer->set_full_precision(!choice.weights);
    for (auto& quantizer : fragments_[name].activations) {
      quantizer->set_full_precision(!choice.activations);
    }
    last_choice_[name] = choice;
    decisions_ += draws_per_fragment;
    quantized_decisions_ += options_.separate_weights_activations
                                ? static_cast<int64_t>(choice.weights) + choice.activations
                                : static_cast<int64_t>(choice.weights);
  }
}

void StochasticStrategy::on_step_end(TrainingState& /*state*/) {
  // Outside a training step (evaluation, checkpoints) the network is fully quantized.
  for (auto& [name, fragment] : fragments_) {
    for (auto& quantizer : fragment.weights) quantizer->set_full_precision(false);
    for (auto& quantizer : fragment.activations) quantizer->set_full_precision(false);
  }
}

void StochasticStrategy::on_epoch_end(TrainingState& state, std::map<std::string, double>& metrics) {
  metrics["sp_delta"] = delta_at(options_, state.epoch, state.total_epochs);
  metrics["sp_quantized_fraction"] =
      decisions_ > 0 ? static_cast<double>(quantized_decisions_) / decisions_ : 1.0;
  decisions_ = 0;
  quantized_decisions_ = 0;
}

std::unique_ptr<Strategy> make_stochastic(const JsonReader& options) {
  return std::make_unique<StochasticStrategy>(read_options(options));
}

void register_stochastic(Registry& registry) {
  registry.add_strategy("stochastic",
                        "SP: each step quantizes each fragment (residual block or layer) with "
                        "probability 1-delta, delta decaying linearly from 0.5 to 0 (options: "
                        "fragment, wa, delta, zero_at_epoch)",
                        make_stochastic, "SP");
}

}  // namespace lowbit::stochastic

LOWBIT_PLUGIN("stochastic", lowbit::stochastic::register_stochastic)
