// The LQ-Net, Bi-Real and Group-Net plugins inside the harness: matrix points a quantizer
// declines, the structural transforms applied to CIFAR ResNet-20, SP's full-precision switch on
// their modules, and a tiny sweep that trains each of them.

#include "test_support.h"

#include <lowbit/experiment/experiment.h>
#include <lowbit/layers/quantized_layers.h>
#include <lowbit/results/store.h>
#include <lowbit/runner/sweep.h>

#include <catch2/catch.hpp>

#include <sstream>

namespace {

using lowbit::testing::load_components;

std::shared_ptr<lowbit::NetworkImpl> build(lowbit::Registry& registry, const std::string& quantizer,
                                           nlohmann::json options, int bits,
                                           const std::string& model = "resnet20") {
  lowbit::JsonReader reader(options, "test.json", "/quantizers/0/options");
  std::shared_ptr<const lowbit::Quantizer> made = registry.quantizer(quantizer)(reader);
  auto layers = made->wrap_layers(std::make_shared<lowbit::QuantizedLayerFactory>(
      made, lowbit::PrecisionPolicy{bits, bits, false}));
  return registry.model(model)(lowbit::ModelSpec{1, 4, 8}, *layers);
}

int64_t count_children(torch::nn::Module& module, const std::string& name_part) {
  int64_t count = 0;
  for (const auto& item : module.named_modules()) {
    const auto at = item.key().find(name_part);
    if (at != std::string::npos && item.key().find('.', at + 1) == std::string::npos) {
      ++count;
    }
  }
  return count;
}

}  // namespace

TEST_CASE("a quantizer declines matrix points it cannot run, and says why", "[plugins]") {
  auto components = load_components();
  auto spec = lowbit::testing::tiny_experiment("declines");
  spec["quantizers"] = {"bireal", "groupnet", "lqnet"};
  spec["precisions"] = {"1W1A", "2W2A", "32W32A"};
  auto experiment = lowbit::parse_experiment(spec, "declines.json", components->registry);
  // bireal and groupnet are binary: 1W1A and 32W32A only; lqnet runs all three.
  CHECK(experiment.runs.size() == 7);
  REQUIRE(experiment.skipped.size() == 2);
  for (const auto& skipped : experiment.skipped) {
    CHECK(skipped.precision == "2W2A");
    CHECK_THAT(skipped.reason, Catch::Contains("takes 1 or 32 bits, not 2W2A"));
    CHECK(skipped.model == "resnet20");
  }
  CHECK(experiment.skipped[0].method == "bireal");
  CHECK(experiment.skipped[1].method == "groupnet");

  // By the stages a strategy plans: progressive precision steps through 8/4/2-bit stages.
  spec["precisions"] = {"1W1A"};
  spec["strategies"] = nlohmann::json::parse(R"([[], ["progressive"]])");
  auto staged = lowbit::parse_experiment(spec, "declines.json", components->registry);
  CHECK(staged.runs.size() == 4);  // three baselines + lqnet+progressive
  REQUIRE(staged.skipped.size() == 2);
  CHECK(staged.skipped[0].method == "bireal+PP");
  CHECK_THAT(staged.skipped[0].reason, Catch::Contains("progressive"));
}

TEST_CASE("bireal turns ResNet-20 into one-conv units with real shortcuts", "[plugins]") {
  auto components = load_components();
  auto network = build(components->registry, "bireal", nlohmann::json::object(), 1);
  // 9 blocks -> 18 units, each a binary conv and a sign; the 2 downsamples are real 1x1 convs.
  CHECK(count_children(*network, ".unit") == 18);
  int64_t binary_convs = 0, signs = 0;
  for (const auto& quantizer : lowbit::tensor_quantizers(*network)) {
    if (dynamic_cast<lowbit::WeightQuantizerImpl*>(quantizer.get())) ++binary_convs;
    if (dynamic_cast<lowbit::ActivationQuantizerImpl*>(quantizer.get())) ++signs;
  }
  CHECK(binary_convs == 18);
  CHECK(signs == 18);
  CHECK(count_children(*network, "downsample_conv") == 2);
  auto images = torch::randn({3, 1, 8, 8});
  auto output = network->forward(images);
  CHECK(output.logits.sizes() == torch::IntArrayRef({3, 4}));
  output.logits.sum().backward();
  for (const auto& parameter : network->named_parameters()) {
    INFO(parameter.key());
    CHECK(parameter.value().grad().defined());
  }
  // "structure": "none" keeps ResNet-20's own blocks (19 quantized convs incl. 2 projections).
  auto plain = build(components->registry, "bireal", {{"structure", "none"}}, 1);
  CHECK(count_children(*plain, ".unit") == 0);
}

TEST_CASE("groupnet turns each ResNet-20 block into K bases", "[plugins]") {
  auto components = load_components();
  auto network = build(components->registry, "groupnet", {{"bases", 3}}, 1);
  CHECK(count_children(*network, ".base") == 27);  // 9 blocks x 3 bases
  int64_t weights = 0;
  for (const auto& quantizer : lowbit::tensor_quantizers(*network)) {
    if (dynamic_cast<lowbit::WeightQuantizerImpl*>(quantizer.get())) ++weights;
  }
  CHECK(weights == 9 * 3 * 2 + 2);  // two binary convs per base, plus 2 binary downsamples
  auto output = network->forward(torch::randn({2, 1, 8, 8}));
  CHECK(output.logits.sizes() == torch::IntArrayRef({2, 4}));
  CHECK(torch::isfinite(output.logits).all().item<bool>());

  // Soft gates: one per block after the first; trains end to end across the stage boundaries.
  auto gated = build(components->registry, "groupnet", {{"bases", 2}, {"gates", true}}, 1);
  int64_t gates = 0;
  for (const auto& parameter : gated->named_parameters()) {
    if (parameter.key().size() >= 5 &&
        parameter.key().substr(parameter.key().size() - 5) == ".gate") {
      ++gates;
    }
  }
  CHECK(gates == 8);
  for (int step = 0; step < 2; ++step) {
    auto logits = gated->forward(torch::randn({2, 1, 8, 8})).logits;
    logits.sum().backward();
  }
  for (const auto& parameter : gated->named_parameters()) {
    INFO(parameter.key());
    CHECK(parameter.value().grad().defined());
  }
}

TEST_CASE("SP's full-precision switch works on every plugin's modules", "[plugins]") {
  auto components = load_components();
  for (const auto& [name, bits] :
       std::vector<std::pair<std::string, int>>{{"lqnet", 2}, {"bireal", 1}, {"groupnet", 1}}) {
    INFO(name);
    torch::manual_seed(3);
    auto network = build(components->registry, name, nlohmann::json::object(), bits);
    network->eval();
    auto images = torch::randn({2, 1, 8, 8});
    auto quantized = network->forward(images).logits;
    auto quantizers = lowbit::tensor_quantizers(*network);
    REQUIRE(!quantizers.empty());
    for (auto& quantizer : quantizers) quantizer->set_full_precision(true);
    auto full = network->forward(images).logits;
    CHECK_FALSE(torch::allclose(quantized, full));
    for (auto& quantizer : quantizers) quantizer->set_full_precision(false);
    CHECK(torch::allclose(network->forward(images).logits, quantized));
  }
}

TEST_CASE("each quantizer plugin trains through the harness", "[plugins]") {
  auto components = load_components();
  lowbit::testing::TemporaryFolder folder;
  auto spec = lowbit::testing::tiny_experiment("plugins");
  spec["quantizers"] = nlohmann::json::parse(
      R"(["lqnet", "bireal", {"name": "groupnet", "options": {"bases": 2}}])");
  spec["precisions"] = {"1W1A", "2W2A"};
  spec["trials"] = 1;
  spec["training"]["epochs"] = 1;
  auto experiment = lowbit::parse_experiment(spec, "plugins.json", components->registry);
  REQUIRE(experiment.runs.size() == 4);
  lowbit::ResultStore store(folder.file("results.db"));
  lowbit::SweepRunner runner(components->registry, components->plugins, store);
  std::ostringstream progress;
  lowbit::SweepOptions options;
  options.progress = &progress;
  auto summary = runner.run(experiment, options);
  INFO(progress.str());
  CHECK(summary.trials_run == 4);
  CHECK(summary.trials_failed == 0);
  auto rows = store.summaries("plugins");
  CHECK(rows.size() == 4);
  for (const auto& row : rows) CHECK(row.top1_mean >= 0.0);
}
