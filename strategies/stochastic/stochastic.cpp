#include "stochastic.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/registry.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <random>
#include <stdexcept>

namespace lowbit::stochastic {

StochasticOptions read_options(const JsonReader& options) {
  StochasticOptions out;
  out.by_block = options.choice("fragment", "block", {"block", "layer"}) == "block";
  out.separate_weights_activations = options.boolean("wa", true);
  out.delta = options.number("delta", 0.5, 0.0, 1.0);
  out.zero_at_epoch = options.integer("zero_at_epoch", 0, 0, 100000);
  return out;
}

double delta_at(const StochasticOptions& options, double progress, int64_t total_epochs) {
  const int64_t zero_at =
      options.zero_at_epoch > 0 ? options.zero_at_epoch : std::max<int64_t>(1, total_epochs / 2);
  const double remaining = 1.0 - progress / static_cast<double>(zero_at);
  return options.delta * std::max(0.0, remaining);
}

std::vector<double> step_draws(uint64_t seed, int64_t step, size_t count) {
  // A fixed tag keeps SP's stream apart from any other generator seeded from the trial's seed.
  constexpr uint64_t kStochasticTag = 0x5350'6472'6177'7331ULL;  // "SPdraws1"
  auto stream = own_random_stream(seed, kStochasticTag, step);
  std::vector<double> draws(count);
  for (auto& draw : draws) draw = unit_interval(stream);
  return draws;
}

void StochasticStrategy::on_trial_begin(const TrainingState& state) {
  fragment_names_.clear();
  fragments_.clear();
  const auto quantizers = tensor_quantizers(*state.network);
  // "layer": a quantized layer and the activation quantizer that feeds it are one fragment.
  std::map<std::string, std::string> layer_reading;  // activation name -> layer name
  for (const auto& quantizer : quantizers) {
    const auto& context = quantizer->context();
    if (!context.input_activation.empty())
      layer_reading.emplace(context.input_activation, context.name);
  }
  for (auto& quantizer : quantizers) {
    const auto& context = quantizer->context();
    if (options_.by_block && context.fragment.empty()) continue;
    const auto reader = layer_reading.find(context.name);
    const std::string key = options_.by_block               ? context.fragment
                            : reader != layer_reading.end() ? reader->second
                                                            : context.name;
    if (fragments_.count(key) == 0) fragment_names_.push_back(key);
    auto& fragment = fragments_[key];
    if (std::dynamic_pointer_cast<WeightQuantizerImpl>(quantizer)) {
      fragment.weights.push_back(quantizer);
    } else {
      fragment.activations.push_back(quantizer);
    }
  }
  if (fragment_names_.empty() && !quantizers.empty()) {
    // Silently training the baseline under an SP label would be a wrong table row.
    throw std::invalid_argument(fmt::format(
        "SP with \"fragment\": \"block\" found no residual block among the network's {} "
        "quantized layers (a network without blocks, such as AlexNet*); use \"fragment\": "
        "\"layer\"",
        quantizers.size()));
  }
}

void StochasticStrategy::on_step_begin(const TrainingState& state, const Batch& /*batch*/) {
  const double progress =
      static_cast<double>(state.epoch) +
      (state.steps_per_epoch > 0
           ? static_cast<double>(state.step_in_epoch) / static_cast<double>(state.steps_per_epoch)
           : 0.0);
  const double delta = delta_at(options_, progress, state.total_epochs);
  const size_t draws_per_fragment = options_.separate_weights_activations ? 2 : 1;
  // Drawn even when δ is 0, so that the draws of a step never depend on the schedule.
  const auto draws =
      step_draws(state.seed, state.global_step, fragment_names_.size() * draws_per_fragment);
  last_choice_.clear();
  for (size_t f = 0; f < fragment_names_.size(); ++f) {
    const auto& name = fragment_names_[f];
    const auto& fragment = fragments_[name];
    FragmentChoice choice;
    choice.weights = draws[f * draws_per_fragment] >= delta;
    choice.activations = draws[f * draws_per_fragment + draws_per_fragment - 1] >= delta;
    for (auto& quantizer : fragment.weights) quantizer->set_full_precision(!choice.weights);
    for (auto& quantizer : fragment.activations) quantizer->set_full_precision(!choice.activations);
    last_choice_[name] = choice;
    // Only draws that switch some quantizer count.
    if (options_.separate_weights_activations) {
      if (!fragment.weights.empty()) {
        ++decisions_;
        quantized_decisions_ += choice.weights;
      }
      if (!fragment.activations.empty()) {
        ++decisions_;
        quantized_decisions_ += choice.activations;
      }
    } else {
      ++decisions_;
      quantized_decisions_ += choice.weights;
    }
  }
}

void StochasticStrategy::on_step_end(const TrainingState& /*state*/) {
  // Outside a training step (evaluation, checkpoints) the network is fully quantized.
  for (auto& [name, fragment] : fragments_) {
    for (auto& quantizer : fragment.weights) quantizer->set_full_precision(false);
    for (auto& quantizer : fragment.activations) quantizer->set_full_precision(false);
  }
}

void StochasticStrategy::on_epoch_end(const TrainingState& state,
                                      std::map<std::string, double>& metrics) {
  // δ at the start of the epoch just trained.
  metrics["sp_delta"] = delta_at(options_, static_cast<double>(state.epoch), state.total_epochs);
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
                        "probability 1-delta, delta decaying linearly per step from 0.5 to 0 "
                        "(options: fragment, wa, delta, zero_at_epoch)",
                        make_stochastic, "SP");
}

}  // namespace lowbit::stochastic

LOWBIT_PLUGIN("stochastic", lowbit::stochastic::register_stochastic)
