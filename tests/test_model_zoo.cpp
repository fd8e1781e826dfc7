// The ImageNet-family models of the zoo: ResNet-18/34/50 (ImageNet and CIFAR stems), their
// pre-activation variants and AlexNet-BN, checked against the architectures' known sizes.
#include <lowbit/layers/quantized_layers.h>
#include <lowbit/models/alexnet.h>
#include <lowbit/models/zoo.h>

#include "test_support.h"

#include <catch2/catch.hpp>

#include <functional>
#include <set>

namespace {

using lowbit::testing::build_model;
using lowbit::testing::default_quantizer;
using lowbit::testing::parameter_count;

int64_t count(const std::string& model, lowbit::ModelSpec spec) {
  lowbit::QuantizedLayerFactory full_precision(nullptr, {});
  return parameter_count(*build_model(model, full_precision, spec));
}

struct QuantizerCensus {
  std::set<std::string> names;
  int weights = 0;
  int activations = 0;
};

QuantizerCensus census(const std::string& model, bool quantize_all, lowbit::ModelSpec spec) {
  lowbit::QuantizedLayerFactory layers(default_quantizer("dorefa"), {2, 2, quantize_all});
  auto network = build_model(model, layers, spec);
  QuantizerCensus result;
  for (const auto& quantizer : lowbit::tensor_quantizers(*network)) {
    result.names.insert(quantizer->context().name);
    if (std::dynamic_pointer_cast<lowbit::WeightQuantizerImpl>(quantizer))
      ++result.weights;
    else
      ++result.activations;
  }
  return result;
}

const lowbit::ModelSpec kImageNet{3, 1000, 224};
const lowbit::ModelSpec kCifar10{3, 10, 32};

}  // namespace

TEST_CASE("ImageNet ResNets have torchvision's parameter counts", "[models][zoo]") {
  CHECK(count("resnet18", kImageNet) == 11689512);
  CHECK(count("resnet34", kImageNet) == 21797672);
  CHECK(count("resnet50", kImageNet) == 25557032);
}

TEST_CASE("CIFAR-stem ResNets have the known CIFAR-10 parameter counts", "[models][zoo]") {
  // The widely used CIFAR ports (3x3 stem, no max-pool, 10-way FC): 7680 fewer stem weights and
  // a smaller classifier than the ImageNet models.
  CHECK(count("resnet18_cifar", kCifar10) == 11173962);
  CHECK(count("resnet34_cifar", kCifar10) == 21282122);
  CHECK(count("resnet50_cifar", kCifar10) == 23520842);
}

TEST_CASE("pre-activation ResNets move the BNs in front of the convs", "[models][zoo]") {
  // Pre-activation trades each block's output BNs and shortcut BN for a BN over the block input,
  // plus one final BN: ResNet-18 loses 9472 BN parameters and gains 7808, ResNet-34 loses 16,896
  // and gains 15,232, ResNet-50 loses 52,992 and gains 45,440.
  CHECK(count("preresnet18", kImageNet) == 11689512 - 9472 + 7808);
  CHECK(count("preresnet34", kImageNet) == 21797672 - 16896 + 15232);
  CHECK(count("preresnet50", kImageNet) == 25557032 - 52992 + 45440);
  // The CIFAR stem is the conv alone; without the final BN this is the common PreActResNet18
  // port's 11,171,146.
  CHECK(count("preresnet18_cifar", kCifar10) == 11171146 + 2 * 512);
}

TEST_CASE("AlexNet-BN has the documented parameter count", "[models][zoo]") {
  // conv 3->96 11x11: 34,848; 96->256 5x5: 614,400; 256->384, 384->384, 384->256 3x3: 884,736 +
  // 1,327,104 + 884,736; BN after each: 2 * (96+256+384+384+256) = 2,752; FC 9216->4096,
  // 4096->4096, 4096->1000 with biases: 37,752,832 + 16,781,312 + 4,097,000; BN1d 2 * 8192.
  CHECK(count("alexnet_bn", kImageNet) == 62396104);
  // The image size only changes activations, never parameters (adaptive pooling to 6x6).
  CHECK(count("alexnet_bn", {3, 1000, 64}) == 62396104);
  CHECK(count("alexnet_bn", {1, 10, 64}) == 62396104 - 2 * 11616 - 990 * 4097);
}

TEST_CASE("zoo models keep first and last layers at full precision unless quantize_all",
          "[models][zoo]") {
  SECTION("ResNet-50") {
    auto policy = census("resnet50", false, {3, 10, 32});
    CHECK(policy.names.count("conv1") == 0);
    CHECK(policy.names.count("fc") == 0);
    CHECK(policy.names.count("layer4.2.act3") == 0);  // feeds pooling and the classifier
    CHECK(policy.weights == 16 * 3 + 4);              // block convs and 4 projections
    CHECK(policy.activations == 1 + 16 * 3 - 1);      // the stem's and all but the last
    auto all = census("resnet50", true, {3, 10, 32});
    CHECK(all.names.count("conv1") == 1);
    CHECK(all.names.count("fc") == 1);
    CHECK(all.names.count("layer4.2.act3") == 1);
    CHECK(all.weights == policy.weights + 2);
    CHECK(all.activations == policy.activations + 1);
  }
  SECTION("pre-activation ResNet-18, CIFAR stem") {
    auto policy = census("preresnet18_cifar", false, kCifar10);
    CHECK(policy.names.count("act_final") == 0);
    CHECK(policy.weights == 8 * 2 + 3);
    CHECK(policy.activations == 8 * 2);
    CHECK(census("preresnet18_cifar", true, kCifar10).names.count("act_final") == 1);
  }
  SECTION("AlexNet-BN") {
    auto policy = census("alexnet_bn", false, {3, 10, 64});
    CHECK(policy.names == std::set<std::string>{"conv2", "conv3", "conv4", "conv5", "fc6", "fc7",
                                                "act1", "act2", "act3", "act4", "act5", "act6"});
    auto all = census("alexnet_bn", true, {3, 10, 64});
    CHECK(all.names.size() == policy.names.size() + 3);
    CHECK(all.names.count("act7") == 1);
  }
}

namespace {

/// Forward and backward at 32W32A, 2W2A and 1W2A* (quantize_all), all parameters getting finite
/// gradients.
void check_forward_backward(const std::string& model,
                            const std::function<std::shared_ptr<lowbit::NetworkImpl>(
                                lowbit::LayerFactory&, lowbit::ModelSpec)>& make,
                            int64_t size, size_t stages) {
  for (auto policy : {lowbit::PrecisionPolicy{32, 32, false}, lowbit::PrecisionPolicy{2, 2, false},
                      lowbit::PrecisionPolicy{1, 2, true}}) {
    INFO(model << " " << policy.weight_bits << "W" << policy.activation_bits << "A"
               << (policy.quantize_all ? "*" : ""));
    lowbit::QuantizedLayerFactory layers(default_quantizer("dorefa"), policy);
    auto network = make(layers, {3, 5, size});
    auto output = network->forward(torch::randn({2, 3, size, size}));
    REQUIRE(output.logits.sizes() == torch::IntArrayRef({2, 5}));
    CHECK(output.stage_features.size() == stages);
    torch::nn::functional::cross_entropy(output.logits, torch::tensor({0, 4})).backward();
    for (const auto& parameter : network->parameters()) {
      REQUIRE(parameter.grad().defined());
      CHECK(torch::isfinite(parameter.grad()).all().item<bool>());
    }
  }
}

void check_zoo_model(const std::string& model, int64_t size) {
  check_forward_backward(
      model,
      [&](lowbit::LayerFactory& layers, lowbit::ModelSpec spec) {
        return build_model(model, layers, spec);
      },
      size, 4);
}

}  // namespace

// ImageNet-stem models on 32x32: small inputs keep this fast; the layers are the same as at 224.
// One model per code path (stem x block x pre/post activation): 34 differs from 18 only in its
// block counts.
TEST_CASE("basic-block zoo models run forward and backward at each precision", "[models][zoo]") {
  for (const auto& [model, size] : std::vector<std::pair<std::string, int64_t>>{
           {"resnet18", 32}, {"preresnet18", 32}, {"preresnet18_cifar", 16}}) {
    DYNAMIC_SECTION(model) { check_zoo_model(model, size); }
  }
}

TEST_CASE("bottleneck zoo models run forward and backward at each precision", "[models][zoo]") {
  for (const auto& [model, size] :
       std::vector<std::pair<std::string, int64_t>>{{"preresnet50", 32}, {"resnet50_cifar", 8}}) {
    DYNAMIC_SECTION(model) { check_zoo_model(model, size); }
  }
}

TEST_CASE("AlexNet-BN runs forward and backward at each precision", "[models][zoo]") {
  // 64x64 is the smallest input its 11x11/4 stem and three pools take. The hidden FCs are
  // narrowed to 512 (the registered 4096-wide model is built by the tests above): the 37M-weight
  // FC would dominate the time and exercise no other code.
  check_forward_backward(
      "alexnet_bn(hidden 512)",
      [](lowbit::LayerFactory& layers, lowbit::ModelSpec spec) {
        return std::static_pointer_cast<lowbit::NetworkImpl>(
            std::make_shared<lowbit::models::AlexNetBNImpl>(
                lowbit::models::AlexNetBNOptions().hidden(512).data(spec), layers));
      },
      64, 3);
}

TEST_CASE("alexnet_bn_cifar_small is alexnet_bn_cifar at a quarter of the width", "[models][zoo]") {
  // Convs (no bias) 1->24 5x5: 600; 24->64 5x5: 38,400; 64->96, 96->96, 96->64 3x3: 55,296 +
  // 82,944 + 55,296; their BNs 2 * (24+64+96+96+64) = 688; FC 64*4*4 = 1024 -> 512 and
  // 512 -> 512 with biases: 524,800 + 262,656; BN1d 2 * 2 * 512 = 2,048; FC 512 -> 10: 5,130.
  CHECK(count("alexnet_bn_cifar_small", {1, 10, 32}) == 1027858);
  // Two more input channels add 2 * 24 * 25 to conv1, 90 more classes 90 * 513 to fc8.
  CHECK(count("alexnet_bn_cifar_small", {3, 100, 32}) == 1027858 + 2 * 600 + 90 * 513);

  // The same layers are quantized as at full width, and the same three stay full precision.
  auto policy = census("alexnet_bn_cifar_small", false, {1, 10, 32});
  CHECK(policy.names == std::set<std::string>{"conv2", "conv3", "conv4", "conv5", "fc6", "fc7",
                                              "act1", "act2", "act3", "act4", "act5", "act6"});
  auto all = census("alexnet_bn_cifar_small", true, {1, 10, 32});
  CHECK(all.names.size() == policy.names.size() + 3);
  CHECK(all.names.count("conv1") == 1);
  CHECK(all.names.count("fc8") == 1);
  CHECK(all.names.count("act7") == 1);

  lowbit::QuantizedLayerFactory full_precision(nullptr, {});
  auto output = build_model("alexnet_bn_cifar_small", full_precision, {1, 10, 32})
                    ->forward(torch::randn({2, 1, 32, 32}));
  CHECK(output.logits.sizes() == torch::IntArrayRef({2, 10}));
  REQUIRE(output.stage_features.size() == 3);
  CHECK(output.stage_features[0].sizes() == torch::IntArrayRef({2, 24, 16, 16}));
  CHECK(output.stage_features[1].sizes() == torch::IntArrayRef({2, 64, 8, 8}));
  CHECK(output.stage_features[2].sizes() == torch::IntArrayRef({2, 64, 4, 4}));

  check_forward_backward(
      "alexnet_bn_cifar_small",
      [](lowbit::LayerFactory& layers, lowbit::ModelSpec spec) {
        return build_model("alexnet_bn_cifar_small", layers, spec);
      },
      32, 3);

  // Widths are five positive numbers.
  for (const auto& widths : std::vector<std::vector<int64_t>>{{24, 64}, {24, 64, 0, 96, 64}}) {
    CHECK_THROWS_WITH(lowbit::models::AlexNetBNImpl(lowbit::models::AlexNetBNOptions()
                                                        .input(lowbit::models::AlexNetInput::cifar)
                                                        .widths(widths)
                                                        .data({1, 10, 32}),
                                                    full_precision),
                      Catch::Contains("5 conv widths >= 1"));
  }
}
