#include <lowbit/layers/quantized_layers.h>
#include <lowbit/models/zoo.h>

#include "test_support.h"

#include <catch2/catch.hpp>

namespace {

using lowbit::testing::build_model;
using lowbit::testing::default_quantizer;
using lowbit::testing::parameter_count;

}  // namespace

TEST_CASE("CIFAR ResNet-20 has the standard size", "[models]") {
  lowbit::QuantizedLayerFactory full_precision(nullptr, {});
  // He et al.'s ResNet-20 has 269,722 parameters with identity (option A) shortcuts; the two
  // projection shortcuts add 16*32 + 32*64 conv weights and 2*(32+64) BN parameters.
  CHECK(parameter_count(*build_model("resnet20", full_precision)) == 269722 + 512 + 2048 + 192);
  CHECK(parameter_count(*build_model("resnet56", full_precision)) == 853018 + 512 + 2048 + 192);
  // Pre-activation moves BN in front of the convs: one BN per block input plus the final one.
  CHECK(parameter_count(*build_model("preresnet20", full_precision)) > 0);
}

TEST_CASE("quantized models keep first conv and classifier at full precision", "[models]") {
  lowbit::QuantizedLayerFactory layers(default_quantizer("dorefa"), {2, 2, false});
  auto network = build_model("resnet20", layers);
  auto quantizers = lowbit::tensor_quantizers(*network);
  int weights = 0;
  int activations = 0;
  for (const auto& quantizer : quantizers) {
    const auto& name = quantizer->context().name;
    CHECK(name != "conv1");
    CHECK(name != "fc");
    CHECK(name != "layer3.2.act2");  // feeds pooling and the classifier
    if (std::dynamic_pointer_cast<lowbit::WeightQuantizerImpl>(quantizer))
      ++weights;
    else
      ++activations;
  }
  CHECK(weights == 18 + 2);      // 18 block convs and 2 projection shortcuts
  CHECK(activations == 1 + 17);  // the stem's and every block's but the very last
}

TEST_CASE("quantize_all quantizes the first and last layers too", "[models]") {
  lowbit::QuantizedLayerFactory layers(default_quantizer("dorefa"), {2, 2, true});
  auto network = build_model("resnet20", layers);
  std::set<std::string> names;
  for (const auto& quantizer : lowbit::tensor_quantizers(*network)) {
    names.insert(quantizer->context().name);
  }
  CHECK(names.count("conv1") == 1);
  CHECK(names.count("fc") == 1);
  CHECK(names.count("layer3.2.act2") == 1);
}

TEST_CASE("every model runs forward and backward at each precision", "[models]") {
  for (const std::string model : {"resnet20", "preresnet20"}) {
    for (auto precision : {std::pair{32, 32}, std::pair{4, 4}, std::pair{2, 2}, std::pair{1, 2}}) {
      INFO(model << " " << precision.first << "W" << precision.second << "A");
      lowbit::QuantizedLayerFactory layers(default_quantizer("dorefa"),
                                           {precision.first, precision.second, false});
      auto network = build_model(model, layers, {1, 10, 16});
      auto output = network->forward(torch::randn({4, 1, 16, 16}));
      REQUIRE(output.logits.sizes() == torch::IntArrayRef({4, 10}));
      CHECK(output.stage_features.size() == 3);
      torch::nn::functional::cross_entropy(output.logits, torch::tensor({0, 1, 2, 3})).backward();
      for (const auto& parameter : network->parameters()) {
        REQUIRE(parameter.grad().defined());
        CHECK(torch::isfinite(parameter.grad()).all().item<bool>());
      }
    }
  }
}

TEST_CASE("quantized weights take 2^k levels in the forward pass", "[models]") {
  lowbit::QuantizedLayerFactory layers(default_quantizer("dorefa"), {2, 2, false});
  auto network = build_model("resnet20", layers);
  for (const auto& module : network->modules()) {
    if (auto conv = std::dynamic_pointer_cast<lowbit::QuantConv2dImpl>(module)) {
      auto levels = std::get<0>(torch::_unique(conv->weight_quantizer().forward(conv->weight)));
      CHECK(levels.numel() <= 4);
    }
  }
}
