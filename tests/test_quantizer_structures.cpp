// Every quantizer against every family of the zoo: what it builds where it accepts a model (the
// structure its paper defines: real shortcuts, bases, stems, which convs are binary) and the
// reason it gives where it refuses one, from the matrix expansion down to building the network.

#include "test_support.h"

#include <lowbit/experiment/experiment.h>
#include <lowbit/layers/quantized_layers.h>
#include <lowbit/models/alexnet.h>
#include <lowbit/plugins/support_table.h>
#include <lowbit/results/store.h>
#include <lowbit/runner/sweep.h>

#include <catch2/catch.hpp>

#include <map>
#include <set>

namespace {

using lowbit::testing::shared_components;

std::shared_ptr<const lowbit::Quantizer> make_quantizer(
    const std::string& name, nlohmann::json options = nlohmann::json::object()) {
  return shared_components().registry.quantizer(name)(lowbit::JsonReader(options, "test.json"));
}

std::shared_ptr<lowbit::NetworkImpl> build(
    const std::string& model, const std::shared_ptr<const lowbit::Quantizer>& quantizer, int bits,
    lowbit::ModelSpec spec = {3, 10, 32}) {
  return lowbit::build_network(shared_components().registry.model(model), spec, quantizer,
                               lowbit::PrecisionPolicy{bits, bits, false});
}

template <typename Module>
int64_t count_modules(torch::nn::Module& network) {
  int64_t count = 0;
  for (const auto& module : network.modules(/*include_self=*/false)) {
    if (module->as<Module>() != nullptr) ++count;
  }
  return count;
}

/// Convolutions by whether their weight is quantized, keyed by module name.
struct ConvCensus {
  std::set<std::string> quantized, full_precision;
};

ConvCensus conv_census(torch::nn::Module& network) {
  ConvCensus census;
  for (const auto& item : network.named_modules()) {
    if (dynamic_cast<lowbit::QuantConv2dImpl*>(item.value().get()) != nullptr) {
      census.quantized.insert(item.key());
    } else if (item.value()->as<torch::nn::Conv2d>() != nullptr) {
      census.full_precision.insert(item.key());
    }
  }
  return census;
}

std::vector<std::string> child_names(torch::nn::Module& module, size_t first) {
  std::vector<std::string> names;
  for (const auto& child : module.named_children()) {
    if (names.size() == first) break;
    names.push_back(child.key());
  }
  return names;
}

/// Side of a conv's output for an 8x8 input of ones: 8 / stride with padding 1, (8 - 2) / stride
/// with padding 0 (3x3 kernels).
int64_t output_side(torch::nn::Conv2dImpl& conv) {
  torch::NoGradGuard no_grad;
  return conv.forward(torch::ones({1, conv.weight.size(1), 8, 8})).size(-1);
}

bool ends_with(const std::string& text, const std::string& end) {
  return text.size() >= end.size() && text.compare(text.size() - end.size(), end.size(), end) == 0;
}

}  // namespace

TEST_CASE("describe_model records blocks and stems without making weights", "[structure]") {
  const auto& registry = shared_components().registry;
  auto resnet18 = lowbit::describe_model(registry.model("resnet18"));
  CHECK(resnet18.blocks.size() == 8);
  CHECK(resnet18.has_only(lowbit::BlockKind::basic));
  REQUIRE(resnet18.stems.size() == 1);
  CHECK(resnet18.stems[0].kernel == 7);
  CHECK(resnet18.stems[0].max_pool);
  CHECK(resnet18.blocks[2].name == "layer2.0");
  CHECK(resnet18.blocks[2].stride == 2);
  CHECK(lowbit::describe_model(registry.model("resnet50")).has_only(lowbit::BlockKind::bottleneck));
  CHECK(lowbit::describe_model(registry.model("preresnet50"))
            .has_only(lowbit::BlockKind::preact_bottleneck));
  auto preresnet20 = lowbit::describe_model(registry.model("preresnet20"));
  CHECK(preresnet20.blocks.size() == 9);
  CHECK(preresnet20.has_only(lowbit::BlockKind::preact_basic));
  CHECK_FALSE(preresnet20.stems.at(0).normalized);
  auto alexnet = lowbit::describe_model(registry.model("alexnet_bn_cifar"));
  CHECK_FALSE(alexnet.has_blocks());
  CHECK(alexnet.stems.empty());
}

TEST_CASE(
    "every quantizer builds and trains a step on every zoo family it accepts, and refuses "
    "the others with its reason",
    "[structure]") {
  const std::vector<std::string> families{"resnet20",       "preresnet20",     "resnet18",
                                          "resnet18_cifar", "resnet50",        "preresnet18",
                                          "preresnet50",    "alexnet_bn_cifar"};
  const std::set<std::string> binary_structures{"resnet20", "resnet18", "resnet18_cifar"};
  struct Case {
    std::string quantizer;
    nlohmann::json options;
    int bits;
  };
  const std::vector<Case> cases{{"dorefa", nlohmann::json::object(), 2},
                                {"lqnet", nlohmann::json::object(), 2},
                                {"bireal", nlohmann::json::object(), 1},
                                {"groupnet", {{"bases", 2}}, 1}};
  for (const auto& model : families) {
    const auto structure = lowbit::describe_model(shared_components().registry.model(model));
    for (const auto& c : cases) {
      INFO(c.quantizer << " on " << model);
      const auto quantizer = make_quantizer(c.quantizer, c.options);
      const bool structural = c.quantizer == "bireal" || c.quantizer == "groupnet";
      const bool accepted = !structural || binary_structures.count(model) == 1;
      const auto reason = quantizer->model_incompatibility(structure);
      if (!accepted) {
        CHECK_FALSE(reason.empty());
        CHECK_THROWS_WITH(build(model, quantizer, c.bits), reason);
        continue;
      }
      CHECK(reason.empty());
      torch::manual_seed(5);
      auto network = build(model, quantizer, c.bits);
      network->train();
      auto output = network->forward(torch::randn({2, 3, 32, 32}));
      REQUIRE(output.logits.sizes() == torch::IntArrayRef({2, 10}));
      CHECK(torch::isfinite(output.logits).all().item<bool>());
      torch::nn::functional::cross_entropy(output.logits, torch::tensor({1, 7})).backward();
      int64_t without_gradient = 0;
      for (const auto& parameter : network->named_parameters()) {
        if (!parameter.value().grad().defined()) {
          UNSCOPED_INFO("no gradient: " << parameter.key());
          ++without_gradient;
        }
      }
      CHECK(without_gradient == 0);
    }
  }
}

TEST_CASE("bireal on ResNet-18 is Bi-Real-18: 16 one-conv units, each with a real shortcut",
          "[structure]") {
  torch::manual_seed(1);
  auto network = build("resnet18", make_quantizer("bireal"), 1);
  // Stem conv -> BN -> max-pool, as the reference: the stem's activation is the identity.
  CHECK(child_names(*network, 4) == std::vector<std::string>{"conv1", "bn1", "act1", "pool"});
  auto children = network->named_children();
  CHECK(children["act1"]->as<torch::nn::Identity>() != nullptr);
  // No ReLU anywhere in Bi-Real.
  CHECK(count_modules<torch::nn::ReLU>(*network) == 0);

  const auto convs = conv_census(*network);
  CHECK(convs.quantized.size() == 16);  // [4, 4, 4, 4] units
  for (const auto& name : convs.quantized) {
    INFO(name);
    CHECK(ends_with(name, ".conv"));
    CHECK(name.find(".unit") != std::string::npos);
  }
  // Full precision: the stem and the three AvgPool -> 1x1 -> BN downsamples.
  CHECK(convs.full_precision == std::set<std::string>{"conv1", "layer2.0.unit1.downsample_conv",
                                                      "layer3.0.unit1.downsample_conv",
                                                      "layer4.0.unit1.downsample_conv"});
  CHECK(count_modules<torch::nn::AvgPool2d>(*network) == 3);
  int64_t signs = 0;
  for (const auto& quantizer : lowbit::tensor_quantizers(*network)) {
    if (std::dynamic_pointer_cast<lowbit::ActivationQuantizerImpl>(quantizer)) ++signs;
  }
  CHECK(signs == 16);

  // Each unit adds a real-valued shortcut: with every binary conv silenced (zero weights) and BN
  // at its initial statistics, each unit passes its real input through (a downsample unit its
  // AvgPool -> 1x1 -> BN), so the network reduces to stem, downsamples, pooling and FC. A sign
  // on any shortcut, or a nonlinearity in stem or head, would change the output.
  network->eval();
  auto modules = network->named_modules();
  {
    torch::NoGradGuard no_grad;
    for (const auto& name : convs.quantized) modules[name]->named_parameters()["weight"].zero_();
  }
  auto images = torch::randn({2, 3, 32, 32});
  auto conv = [&](const std::string& name, const torch::Tensor& x) {
    return modules[name]->as<torch::nn::Conv2d>()->forward(x);
  };
  auto norm = [&](const std::string& name, const torch::Tensor& x) {
    return modules[name]->as<torch::nn::BatchNorm2d>()->forward(x);
  };
  auto x = torch::max_pool2d(norm("bn1", conv("conv1", images)), 3, 2, 1);
  for (const std::string stage : {"layer2", "layer3", "layer4"}) {
    const auto unit = stage + ".0.unit1.";
    x = norm(unit + "downsample_bn", conv(unit + "downsample_conv", torch::avg_pool2d(x, 2, 2)));
  }
  auto expected = modules["fc"]->as<torch::nn::Linear>()->forward(
      torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
  CHECK(torch::allclose(network->forward(images).logits, expected, 1e-5, 1e-5));

  // Padding 1 with zeros on every binary conv (spec §3.1): on ones, the top-left output sums only
  // the weights over the image, never a padded border.
  for (const auto& name : convs.quantized) {
    INFO(name);
    auto* conv = modules[name]->as<torch::nn::Conv2d>();
    REQUIRE(conv != nullptr);
    {
      torch::NoGradGuard no_grad;
      conv->weight.uniform_(0.5, 1.5);
    }
    const auto side = output_side(*conv);
    CHECK((side == 8 || side == 4));
    torch::NoGradGuard no_grad;
    auto corner = conv->forward(torch::ones({1, conv->weight.size(1), 8, 8}))[0][0][0][0];
    auto inside = conv->weight[0].slice(1, 1).slice(2, 1).sum();
    CHECK(corner.item<float>() == Approx(inside.item<float>()).epsilon(1e-5));
  }
}

TEST_CASE("groupnet on ResNet-18: the reference's stem, K bases per block, binary downsamples",
          "[structure]") {
  torch::manual_seed(2);
  auto network = build("resnet18", make_quantizer("groupnet"), 1);
  // conv -> max-pool -> BN, without an activation (the reference's order).
  CHECK(child_names(*network, 4) == std::vector<std::string>{"conv1", "pool", "bn1", "layer1"});
  CHECK(count_modules<torch::nn::ReLU>(*network) == 0);  // its ReLUs are inside the bases

  const auto convs = conv_census(*network);
  CHECK(convs.full_precision == std::set<std::string>{"conv1"});
  // 8 blocks x 5 bases x 2 binary convs, plus 3 binary 1x1 downsamples shared by the bases.
  CHECK(convs.quantized.size() == 8 * 5 * 2 + 3);
  auto modules = network->named_modules();
  std::set<std::string> bases;
  for (const auto& name : convs.quantized) {
    auto* conv = modules[name]->as<torch::nn::Conv2d>();
    REQUIRE(conv != nullptr);
    // No padding in the conv: the bases pad with +1 before it (the plugin test checks the value).
    const auto side = output_side(*conv);
    if (conv->weight.size(-1) == 3) CHECK((side == 6 || side == 3));
    if (name.find(".base") != std::string::npos) bases.insert(name.substr(0, name.rfind('.')));
  }
  CHECK(bases.size() == 40);
  int64_t scale_sets = 0;
  for (const auto& parameter : network->named_parameters()) {
    if (ends_with(parameter.key(), ".scales")) {
      CHECK(parameter.value().numel() == 5);
      ++scale_sets;
    }
  }
  CHECK(scale_sets == 8);
}

TEST_CASE("dorefa and lqnet keep ResNet-18's own blocks with quantized convs", "[structure]") {
  for (const std::string name : {"dorefa", "lqnet"}) {
    INFO(name);
    auto network = build("resnet18", make_quantizer(name), 2);
    CHECK(child_names(*network, 4) == std::vector<std::string>{"conv1", "bn1", "act1", "pool"});
    const auto convs = conv_census(*network);
    // 16 block convs and 3 projection shortcuts; the stem conv stays full precision.
    CHECK(convs.quantized.size() == 19);
    CHECK(convs.quantized.count("layer2.0.shortcut") == 1);
    CHECK(convs.full_precision == std::set<std::string>{"conv1"});
  }
}

TEST_CASE("the stem is built through the factory, and checkpoints keep torchvision's names",
          "[structure]") {
  lowbit::QuantizedLayerFactory full_precision(nullptr, {});
  auto network = shared_components().registry.model("resnet18")({3, 10, 32}, full_precision);
  auto parameters = network->named_parameters();
  CHECK(parameters.contains("conv1.weight"));
  CHECK(parameters.contains("bn1.weight"));
  CHECK(parameters.contains("layer1.0.conv1.weight"));
  for (const auto& parameter : parameters) CHECK(parameter.key().rfind("stem", 0) != 0);
}

TEST_CASE("AlexNet* for 32x32 images, and a clear refusal of the ImageNet layout", "[structure]") {
  const auto& registry = shared_components().registry;
  lowbit::QuantizedLayerFactory full_precision(nullptr, {});
  CHECK_THROWS_WITH(
      registry.model("alexnet_bn")({3, 100, 32}, full_precision),
      Catch::Contains("at least 63x63 pixels, got 32x32") && Catch::Contains("alexnet_bn_cifar"));
  auto count = [&](lowbit::ModelSpec spec) {
    int64_t total = 0;
    for (const auto& parameter :
         registry.model("alexnet_bn_cifar")(spec, full_precision)->parameters()) {
      total += parameter.numel();
    }
    return total;
  };
  // Convs 7,200 + 614,400 + 884,736 + 1,327,104 + 884,736; their BNs 2,752; FC 4096->4096 twice
  // with biases 2 x 16,781,312 and BN1d 2 x 8,192; FC 4096->100 409,700.
  CHECK(count({3, 100, 32}) == 37709636);
  CHECK(count({1, 10, 32}) == 37709636 - 2 * 2400 - 90 * 4097);

  torch::manual_seed(4);
  auto network = build("alexnet_bn_cifar", make_quantizer("dorefa"), 2, {1, 10, 28});
  auto output = network->forward(torch::randn({2, 1, 28, 28}));
  CHECK(output.logits.sizes() == torch::IntArrayRef({2, 10}));
  auto at32 =
      build("alexnet_bn_cifar", nullptr, 32, {3, 100, 32})->forward(torch::randn({2, 3, 32, 32}));
  REQUIRE(at32.stage_features.size() == 3);
  CHECK(at32.stage_features[0].sizes() == torch::IntArrayRef({2, 96, 16, 16}));
  CHECK(at32.stage_features[1].sizes() == torch::IntArrayRef({2, 256, 8, 8}));
  CHECK(at32.stage_features[2].sizes() == torch::IntArrayRef({2, 256, 4, 4}));
}

TEST_CASE("the matrix skips models a structural quantizer refuses, with the reason",
          "[structure]") {
  auto spec = lowbit::testing::tiny_experiment("refusals");
  spec["models"] = {"resnet18", "resnet50", "preresnet20", "alexnet_bn_cifar"};
  spec["quantizers"] =
      nlohmann::json::parse(R"(["bireal", {"name": "groupnet", "options": {"bases": 2}}])");
  spec["precisions"] = {"1W1A"};
  auto experiment = lowbit::parse_experiment(spec, "refusals.json", shared_components().registry);
  REQUIRE(experiment.runs.size() == 2);
  for (const auto& run : experiment.runs) CHECK(run.model == "resnet18");
  std::map<std::string, std::string> reasons;  // by "model method"
  for (const auto& skipped : experiment.skipped) {
    reasons[skipped.model + " " + skipped.method] = skipped.reason;
  }
  REQUIRE(reasons.size() == 6);
  CHECK_THAT(reasons["resnet50 bireal"], Catch::Contains("bottleneck block"));
  CHECK_THAT(reasons["resnet50 groupnet"], Catch::Contains("bottleneck base"));
  CHECK_THAT(reasons["preresnet20 bireal"], Catch::Contains("pre-activation basic block"));
  CHECK_THAT(reasons["alexnet_bn_cifar groupnet"], Catch::Contains("has none"));
  // "structure": "none" is a plain binary network on any model.
  spec["quantizers"] =
      nlohmann::json::parse(R"([{"name": "bireal", "options": {"structure": "none"}}])");
  CHECK(lowbit::parse_experiment(spec, "refusals.json", shared_components().registry).runs.size() ==
        4);
}

TEST_CASE("a model that cannot take the data stops the sweep before any trial", "[structure]") {
  lowbit::testing::TemporaryFolder folder;
  auto spec = lowbit::testing::tiny_experiment("too_small");
  spec["models"] = {"resnet20", "alexnet_bn"};
  auto experiment = lowbit::parse_experiment(spec, "too_small.json", shared_components().registry);
  const auto db = folder.file("results.db");
  {
    lowbit::ResultStore store(db);
    lowbit::SweepRunner runner(shared_components().registry, shared_components().plugins, store);
    try {
      runner.run(experiment, lowbit::SweepOptions{});
      FAIL("the sweep ran");
    } catch (const lowbit::ConfigError& e) {
      CHECK(e.file() == "too_small.json");
      CHECK(e.pointer() == "/models");
      CHECK_THAT(e.problem(), Catch::Contains("alexnet_bn") && Catch::Contains("8x8 images") &&
                                  Catch::Contains("at least 63x63"));
    }
  }
  CHECK(lowbit::testing::count_rows(db, "SELECT COUNT(*) FROM trials") == 0);
}

TEST_CASE("the support table lists every quantizer against every model", "[structure]") {
  const auto cells = lowbit::quantizer_support(shared_components().registry);
  std::map<std::string, std::string> refusal;  // by "model quantizer"
  for (const auto& cell : cells) refusal[cell.model + " " + cell.quantizer] = cell.refusal;
  const auto models = shared_components().registry.names(lowbit::ComponentKind::model);
  CHECK(cells.size() == models.size() * 4);
  CHECK(refusal.at("resnet20 bireal").empty());
  CHECK(refusal.at("resnet34 groupnet").empty());
  CHECK(refusal.at("resnet50 dorefa").empty());
  CHECK_THAT(refusal.at("resnet50_cifar bireal"), Catch::Contains("bottleneck"));
  CHECK_THAT(refusal.at("alexnet_bn groupnet"), Catch::Contains("has none"));
  const auto table = lowbit::render_support_table(cells);
  CHECK_THAT(table,
             Catch::StartsWith("model") && Catch::Contains("bireal  dorefa  groupnet  lqnet"));
  CHECK_THAT(table, Catch::Contains("\nresnet20 ") && Catch::Contains("\n1. bireal: "));
}

TEST_CASE("each quantized layer knows the activation that feeds it (SP's layer fragment)",
          "[structure]") {
  auto inputs = [](const std::string& model, const std::string& quantizer) {
    std::map<std::string, std::string> found;
    auto network = build(model, make_quantizer(quantizer), quantizer == "dorefa" ? 2 : 1);
    for (const auto& tensor_quantizer : lowbit::tensor_quantizers(*network)) {
      if (std::dynamic_pointer_cast<lowbit::WeightQuantizerImpl>(tensor_quantizer)) {
        found[tensor_quantizer->context().name] = tensor_quantizer->context().input_activation;
      }
    }
    return found;
  };
  // Post-activation: a block's output activation feeds the next block's first conv; a
  // projection shortcut reads the block's input, which its first conv already pairs with.
  const auto resnet = inputs("resnet20", "dorefa");
  CHECK(resnet.at("layer1.0.conv1") == "act1");
  CHECK(resnet.at("layer1.0.conv2") == "layer1.0.act1");
  CHECK(resnet.at("layer1.1.conv1") == "layer1.0.act2");
  CHECK(resnet.at("layer2.0.shortcut").empty());
  const auto bottleneck = inputs("resnet50", "dorefa");
  CHECK(bottleneck.at("layer1.0.conv3") == "layer1.0.act2");
  CHECK(bottleneck.at("layer1.1.conv1") == "layer1.0.act3");
  // Pre-activation: each conv reads the activation just before it.
  const auto preact = inputs("preresnet20", "dorefa");
  CHECK(preact.at("layer1.0.conv1") == "layer1.0.act1");
  CHECK(preact.at("layer1.0.conv2") == "layer1.0.act2");
  CHECK(preact.at("layer2.0.shortcut").empty());
  const auto alexnet = inputs("alexnet_bn_cifar", "dorefa");
  CHECK(alexnet.at("conv2") == "act1");
  CHECK(alexnet.at("fc6") == "act5");
  CHECK(alexnet.at("fc7") == "act6");
  // The structural transforms' own blocks: Bi-Real's sign feeds its unit's conv; Group-Net's
  // block sign feeds the first base (and the binary downsample, which it is built before).
  const auto bireal = inputs("resnet18", "bireal");
  CHECK(bireal.at("layer1.0.unit1.conv") == "layer1.0.unit1.sign");
  CHECK(bireal.at("layer1.0.unit2.conv") == "layer1.0.unit2.sign");
  const auto groupnet = inputs("resnet18", "groupnet");
  CHECK(groupnet.at("layer1.0.base0.conv1") == "layer1.0.sign");
  CHECK(groupnet.at("layer1.0.base0.conv2") == "layer1.0.base0.sign2");
  CHECK(groupnet.at("layer1.0.base1.conv1").empty());
  CHECK(groupnet.at("layer2.0.downsample") == "layer2.0.sign");
  CHECK(groupnet.at("layer2.0.base0.conv1").empty());
}
