// SP: the δ schedule, the fragments it finds, which fragments a step quantized (and that the
// frequencies follow 1−δ), W/A drawn separately, and the fully quantized network between steps.

#include "stochastic.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/error.h>
#include <lowbit/sdk/registry.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

extern "C" const lowbit_plugin_info* lowbit_plugin_entry();

namespace {

using lowbit::stochastic::StochasticStrategy;
using nlohmann::json;

class SignWeights : public lowbit::WeightQuantizerImpl {
 public:
  using WeightQuantizerImpl::WeightQuantizerImpl;

 protected:
  torch::Tensor quantize(const torch::Tensor& weight) override { return weight.sign(); }
};

class RoundActivations : public lowbit::ActivationQuantizerImpl {
 public:
  using ActivationQuantizerImpl::ActivationQuantizerImpl;

 protected:
  torch::Tensor quantize(const torch::Tensor& input) override { return input.round(); }
};

/// Two "blocks" of a weight and an activation quantizer each, plus a stem outside any block. As
/// in a post-activation ResNet, the first block's activation feeds the second block's conv.
class TinyNetwork : public lowbit::NetworkImpl {
 public:
  TinyNetwork() {
    add("stem.conv", "", true);
    add("layer1.0.conv1", "layer1.0", true);
    add("layer1.0.act1", "layer1.0", false);
    add("layer1.1.conv1", "layer1.1", true, "layer1.0.act1");
    add("layer1.1.act1", "layer1.1", false);
  }
  /// Layers named "act…" are activation quantizers, the others weight quantizers reading the
  /// activation before them.
  explicit TinyNetwork(const std::vector<std::pair<std::string, std::string>>& layers) {
    std::string previous_activation;
    for (const auto& [name, fragment] : layers) {
      const bool weights = name.rfind("act", 0) != 0;
      add(name, fragment, weights, weights ? previous_activation : "");
      if (!weights) previous_activation = name;
    }
  }
  lowbit::NetworkOutput forward(torch::Tensor images) override { return {images, {}}; }

  std::vector<std::shared_ptr<lowbit::TensorQuantizerImpl>> quantizers;

 private:
  void add(const std::string& name, const std::string& fragment, bool weights,
           const std::string& input_activation = "") {
    lowbit::LayerContext context{name, fragment, 1, 1, 1, input_activation};
    std::shared_ptr<lowbit::TensorQuantizerImpl> quantizer;
    if (weights) {
      quantizer = std::make_shared<SignWeights>(context, 2);
    } else {
      quantizer = std::make_shared<RoundActivations>(context, 2);
    }
    std::string key = name;
    std::replace(key.begin(), key.end(), '.', '_');
    register_module(key, quantizer);
    quantizers.push_back(quantizer);
  }
};

std::unique_ptr<StochasticStrategy> make(const json& options) {
  auto strategy = lowbit::stochastic::make_stochastic(lowbit::JsonReader(options, "test.json"));
  return std::unique_ptr<StochasticStrategy>(static_cast<StochasticStrategy*>(strategy.release()));
}

lowbit::TrainingState state_for(TinyNetwork& network, int64_t total_epochs) {
  lowbit::TrainingState state;
  state.network = &network;
  state.total_epochs = total_epochs;
  return state;
}

}  // namespace

TEST_CASE("stochastic registers with the label SP", "[stochastic]") {
  lowbit::Registry registry;
  lowbit_plugin_entry()->register_components(registry);
  CHECK(registry.info(lowbit::ComponentKind::strategy, "stochastic").label == "SP");
}

TEST_CASE("SP: delta decays linearly from 0.5 to 0 at the configured epoch", "[stochastic]") {
  json defaults = json::object();
  auto options = lowbit::stochastic::read_options(lowbit::JsonReader(defaults, "t"));
  CHECK(lowbit::stochastic::delta_at(options, 0, 40) == Approx(0.5));
  CHECK(lowbit::stochastic::delta_at(options, 10, 40) == Approx(0.25));
  CHECK(lowbit::stochastic::delta_at(options, 19, 40) == Approx(0.025));
  CHECK(lowbit::stochastic::delta_at(options, 20, 40) == 0.0);
  CHECK(lowbit::stochastic::delta_at(options, 39, 40) == 0.0);
  json custom = {{"delta", 0.8}, {"zero_at_epoch", 4}};
  options = lowbit::stochastic::read_options(lowbit::JsonReader(custom, "t"));
  CHECK(lowbit::stochastic::delta_at(options, 1, 40) == Approx(0.6));
  CHECK(lowbit::stochastic::delta_at(options, 4, 40) == 0.0);
}

TEST_CASE("SP: fragments are residual blocks or single layers; a block fragment skips the stem",
          "[stochastic]") {
  TinyNetwork network;
  auto state = state_for(network, 4);
  auto blocks = make(json::object());
  blocks->on_trial_begin(state);
  CHECK(blocks->fragments() == std::vector<std::string>{"layer1.0", "layer1.1"});
  auto layers = make({{"fragment", "layer"}});
  layers->on_trial_begin(state);
  // A layer and the activation that feeds it are one fragment; an activation no quantized
  // layer reads is one alone. A quantized layer outside every block is a layer like any other.
  CHECK(layers->fragments() ==
        std::vector<std::string>{"stem.conv", "layer1.0.conv1", "layer1.1.conv1", "layer1.1.act1"});
  CHECK_THROWS_WITH(make({{"fragment", "stage"}}),
                    Catch::Contains("/fragment") && Catch::Contains("block, layer"));
}

TEST_CASE("SP on a network without blocks: every layer is a fragment, and \"block\" refuses",
          "[stochastic]") {
  // AlexNet*: no layer names a block. Before this, SP found no fragment there and trained the
  // baseline under an SP label.
  TinyNetwork network({{"conv2", ""}, {"act2", ""}, {"fc6", ""}});
  auto state = state_for(network, 4);
  state.seed = 11;
  auto layers = make({{"fragment", "layer"}, {"wa", false}});
  layers->on_trial_begin(state);
  CHECK(layers->fragments() == std::vector<std::string>{"conv2", "fc6"});
  int64_t kept_full_precision = 0;
  for (; state.global_step < 100; ++state.global_step) {
    layers->on_step_begin(state, {});
    kept_full_precision += !network.quantizers[2]->is_quantizing();
    CHECK(network.quantizers[1]->is_quantizing() == network.quantizers[2]->is_quantizing());
    layers->on_step_end(state);
  }
  CHECK(kept_full_precision > 0);
  CHECK_THROWS_WITH(make(json::object())->on_trial_begin(state),
                    Catch::Contains("no residual block") && Catch::Contains("\"layer\""));
}

TEST_CASE("SP: each step quantizes each fragment with probability 1-delta", "[stochastic]") {
  TinyNetwork network;
  auto state = state_for(network, 4);  // δ: epoch 0 → 0.5, epoch 1 → 0.25, epoch 2 → 0
  state.seed = 3;
  auto strategy = make({{"wa", false}});
  strategy->on_trial_begin(state);
  lowbit::Batch batch;
  for (int64_t epoch : {0, 1, 2}) {
    state.epoch = epoch;
    int64_t quantized = 0;
    const int64_t steps = 2000;
    for (int64_t step = 0; step < steps; ++step, ++state.global_step) {
      strategy->on_step_begin(state, batch);
      for (const auto& [name, choice] : strategy->last_choice()) {
        CHECK(choice.weights == choice.activations);  // one draw per fragment without "wa"
        quantized += choice.weights;
      }
      // The quantizers follow the choice: a block's weight and activation together; stem always.
      const auto& choice = strategy->last_choice().at("layer1.0");
      CHECK(network.quantizers[0]->is_quantizing());
      CHECK(network.quantizers[1]->is_quantizing() == choice.weights);
      CHECK(network.quantizers[2]->is_quantizing() == choice.weights);
      strategy->on_step_end(state);
      for (auto& quantizer : network.quantizers) CHECK(quantizer->is_quantizing());
    }
    const double expected = 1.0 - lowbit::stochastic::delta_at({}, epoch, 4);
    CHECK(static_cast<double>(quantized) / (2 * steps) == Approx(expected).margin(0.03));
    std::map<std::string, double> metrics;
    strategy->on_epoch_end(state, metrics);
    CHECK(metrics.at("sp_delta") == Approx(1.0 - expected));
    CHECK(metrics.at("sp_quantized_fraction") == Approx(expected).margin(0.03));
  }
}

TEST_CASE("SP: delta decays per iteration, not per epoch", "[stochastic]") {
  lowbit::stochastic::StochasticOptions options;  // 0.5 → 0 at half the epochs
  CHECK(lowbit::stochastic::delta_at(options, 0.5, 4) == Approx(0.375));
  CHECK(lowbit::stochastic::delta_at(options, 1.75, 4) == Approx(0.0625));
  TinyNetwork network;
  auto state = state_for(network, 4);
  state.steps_per_epoch = 4;
  auto strategy = make({{"delta", 1.0}});
  strategy->on_trial_begin(state);
  // δ = 1 - progress / 2: at step 2 of epoch 1, progress 1.5 and δ 0.25, so a draw of 0.3 would
  // quantize; δ at the start of that epoch (0.5) would not.
  state.epoch = 1;
  state.step_in_epoch = 2;
  int64_t quantized = 0, steps = 4000;
  for (int64_t step = 0; step < steps; ++step, ++state.global_step) {
    strategy->on_step_begin(state, {});
    quantized += strategy->last_choice().at("layer1.0").weights;
    strategy->on_step_end(state);
  }
  CHECK(static_cast<double>(quantized) / steps == Approx(0.75).margin(0.03));
}

TEST_CASE("SP draws from its own generator: the same per seed and step, whatever else draws",
          "[stochastic]") {
  using lowbit::stochastic::step_draws;
  CHECK(step_draws(7, 12, 6) == step_draws(7, 12, 6));
  CHECK(step_draws(7, 12, 6) != step_draws(7, 13, 6));
  CHECK(step_draws(7, 12, 6) != step_draws(8, 12, 6));
  for (double draw : step_draws(1, 0, 1000)) CHECK((draw >= 0.0 && draw < 1.0));

  auto choices = [](uint64_t global_seed) {
    torch::manual_seed(global_seed);  // another user of the global generator must not matter
    TinyNetwork network;
    auto state = state_for(network, 4);
    state.seed = 21;
    auto strategy = make(json::object());
    strategy->on_trial_begin(state);
    std::vector<bool> seen;
    for (; state.global_step < 50; ++state.global_step) {
      torch::rand({3});
      strategy->on_step_begin(state, {});
      for (const auto& [name, choice] : strategy->last_choice()) {
        seen.push_back(choice.weights);
        seen.push_back(choice.activations);
      }
      strategy->on_step_end(state);
    }
    return seen;
  };
  CHECK(choices(1) == choices(99));
}

TEST_CASE("SP with wa (the default): weights and activations are drawn separately",
          "[stochastic]") {
  TinyNetwork network;
  auto state = state_for(network, 4);
  state.seed = 5;
  auto strategy = make(json::object());
  strategy->on_trial_begin(state);
  int64_t differ = 0;
  const int64_t steps = 1000;
  for (int64_t step = 0; step < steps; ++step, ++state.global_step) {
    strategy->on_step_begin(state, {});
    const auto& choice = strategy->last_choice().at("layer1.1");
    CHECK(network.quantizers[3]->is_quantizing() == choice.weights);
    CHECK(network.quantizers[4]->is_quantizing() == choice.activations);
    differ += choice.weights != choice.activations;
    strategy->on_step_end(state);
  }
  // Independent draws with δ = 0.5 differ half the time.
  CHECK(static_cast<double>(differ) / steps == Approx(0.5).margin(0.06));
}

TEST_CASE("SP counts only the draws that take effect", "[stochastic]") {
  // Layer fragments with "wa": a conv fragment has no activation quantizer, so its activation
  // draw changes nothing and is not counted (nor is an activation fragment's weight draw).
  TinyNetwork network;
  auto state = state_for(network, 4);
  state.seed = 9;
  auto strategy = make({{"fragment", "layer"}});
  strategy->on_trial_begin(state);
  int64_t effective = 0, quantized = 0;
  for (; state.global_step < 300; ++state.global_step) {
    strategy->on_step_begin(state, {});
    for (const auto& [name, choice] : strategy->last_choice()) {
      // layer1.1.conv1 holds layer1.0.act1 too: both its draws count.
      const bool has_weights = name.find("conv") != std::string::npos;
      const bool has_activations = name == "layer1.1.conv1" || !has_weights;
      effective += has_weights + has_activations;
      quantized += (has_weights && choice.weights) + (has_activations && choice.activations);
    }
    strategy->on_step_end(state);
  }
  std::map<std::string, double> metrics;
  strategy->on_epoch_end(state, metrics);
  CHECK(effective == 300 * 5);  // stem.conv: a weight draw only
  CHECK(metrics.at("sp_quantized_fraction") ==
        Approx(static_cast<double>(quantized) / effective).epsilon(1e-12));
}

TEST_CASE("SP layer: a layer and its input share a draw, or draw apart with W/A", "[stochastic]") {
  for (const bool separate : {false, true}) {
    TinyNetwork network;
    auto state = state_for(network, 4);
    state.seed = 5;
    auto strategy = make({{"fragment", "layer"}, {"wa", separate}});
    strategy->on_trial_begin(state);
    const auto& activation = *network.quantizers[2];  // layer1.0.act1
    const auto& layer = *network.quantizers[3];       // layer1.1.conv1, which reads it
    int64_t held = 0, apart = 0;
    for (; state.global_step < 200; ++state.global_step) {
      strategy->on_step_begin(state, {});
      held += !layer.is_quantizing();
      apart += activation.is_quantizing() != layer.is_quantizing();
      strategy->on_step_end(state);
    }
    INFO("wa " << separate);
    CHECK(held > 0);
    if (separate) {
      CHECK(apart > 0);
    } else {
      CHECK(apart == 0);
    }
  }
}
