// Bi-Real Net against the vectors of the quantizer spec (§7.1-7.3, shared/spec/
// vectors_quantizers.txt, from the authors' own PyTorch modules), and the plugin as the harness
// uses it: modules and the block transform from the plugin's entry point.

#include "bireal.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/error.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/quantizer.h>
#include <lowbit/sdk/registry.h>
#include <lowbit/sdk/testing/test_layers.h>
#include <lowbit/sdk/testing/plugin_test.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace {

using namespace lowbit::bireal;

using lowbit::testing::check_close;
using lowbit::testing::kTolerance;
using lowbit::testing::values;

std::shared_ptr<lowbit::Quantizer> make_quantizer(
    const nlohmann::json& options = nlohmann::json::object()) {
  return lowbit::testing::make_plugin_quantizer("bireal", options);
}

const torch::Tensor kX = values({-1.5, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 1.5});

torch::Tensor spec_weight() {
  return torch::stack({values({0.5, -0.25, 0.1, -1.5}), values({0.2, 0.2, -0.2, 0.4})})
      .reshape({2, 1, 2, 2});
}

/// dL/dW for L = sum(conv(W_b, [[1,2],[3,4]])).
torch::Tensor weight_gradient(WeightGradient gradient) {
  auto w = spec_weight().requires_grad_();
  auto input = values({1, 2, 3, 4}).reshape({1, 1, 2, 2});
  auto out = torch::conv2d(input, binary_weight(w, gradient));
  check_close(out.flatten(), values({-1.175, 1.0}));
  out.sum().backward();
  return w.grad().reshape({2, 4});
}

}  // namespace

TEST_CASE("bireal ApproxSign: forward sign, piecewise-linear gradient", "[bireal]") {
  auto x = kX.clone().requires_grad_();
  auto y = binary_activation(x);
  check_close(y, values({-1, -1, -1, -1, 1, 1, 1, 1, 1}));  // sign(0) = +1
  y.sum().backward();
  check_close(x.grad(), values({0, 0, 1, 1.5, 2, 1.5, 1, 0, 0}));
  // Reference parity: torch.sign gives 0 at 0.
  check_close(binary_activation(kX, SignZero::zero), values({-1, -1, -1, -1, 0, 1, 1, 1, 1}));
}

TEST_CASE("bireal weights: per-channel alpha and the three gradients", "[bireal]") {
  auto wb = binary_weight(spec_weight()).reshape({2, 4});
  check_close(wb[0], values({0.5875, -0.5875, 0.5875, -0.5875}));
  check_close(wb[1], values({0.25, 0.25, -0.25, 0.25}));
  auto paper = weight_gradient(WeightGradient::magnitude_aware);
  check_close(paper[0], values({0.5875, 1.175, 1.7625, 0}));
  check_close(paper[1], values({0.25, 0.5, 0.75, 1.0}));
  auto clipped = weight_gradient(WeightGradient::clipped);
  check_close(clipped[0], values({1, 2, 3, 0}));
  check_close(clipped[1], values({1, 2, 3, 4}));
  auto plain = weight_gradient(WeightGradient::identity);
  check_close(plain, values({1, 2, 3, 4, 1, 2, 3, 4}).reshape({2, 4}));
  // sign(0) = +1 keeps a zero weight binary.
  check_close(binary_weight(values({0.0, -2.0}).reshape({1, 2})),
              values({1.0, -1.0}).reshape({1, 2}));
}

TEST_CASE("bireal block transform reproduces the authors' BasicBlock", "[bireal]") {
  auto quantizer = make_quantizer();
  auto layers = quantizer->wrap_layers(std::make_shared<lowbit::testing::TestLayers>(quantizer, 1));
  bool standard_called = false;
  auto block =
      layers->residual_block(lowbit::BlockSpec{"layer1.0", 1, 1, 1}, [&](lowbit::LayerFactory&) {
        standard_called = true;
        return torch::nn::AnyModule(torch::nn::Identity());
      });
  CHECK_FALSE(standard_called);
  auto params = block.ptr()->named_parameters();
  REQUIRE(params.contains("unit1.conv.weight"));
  REQUIRE(params.contains("unit2.conv.weight"));
  CHECK_FALSE(params.contains("unit1.downsample_conv.weight"));
  {
    torch::NoGradGuard no_grad;
    params["unit1.conv.weight"].copy_(
        values({0.3, -0.1, 0.2, -0.4, 0.5, 0.1, -0.2, 0.05, 0.25}).reshape({1, 1, 3, 3}));
  }
  block.ptr()->eval();
  auto x = values({-0.6, 0.2, 1.3, 0.1, -1.2, 0.4, 0.7, -0.3, 0.9}).reshape({1, 1, 3, 3});
  // The spec's values for the unit with the given weight.
  const auto expected = values({-0.6, 0.6666644, 1.7666643, 0.5666644, -1.8999965, 1.3333287,
                                0.2333356, 0.1666644, 0.9})
                            .reshape({1, 1, 3, 3});
  // One unit is BN_eval(conv(sign x, alpha sign W)) + x; a zero weight (alpha = 0) makes the
  // second unit the identity, so the block output is the first unit's.
  {
    torch::NoGradGuard no_grad;
    params["unit2.conv.weight"].zero_();
  }
  check_close(block.forward(x), expected);
}

TEST_CASE("bireal downsample shortcut is AvgPool -> real 1x1 conv -> BN", "[bireal]") {
  auto quantizer = make_quantizer();
  auto layers = quantizer->wrap_layers(std::make_shared<lowbit::testing::TestLayers>(quantizer, 1));
  auto block = layers->residual_block(lowbit::BlockSpec{"layer2.0", 2, 4, 2},
                                      [](lowbit::LayerFactory&) { return torch::nn::AnyModule(); });
  auto params = block.ptr()->named_parameters();
  REQUIRE(params.contains("unit1.downsample_conv.weight"));
  CHECK(params["unit1.downsample_conv.weight"].sizes() == torch::IntArrayRef({4, 2, 1, 1}));
  // The downsample conv is full precision: no quantizer among its children.
  for (const auto& quantizer_module : lowbit::tensor_quantizers(*block.ptr())) {
    CHECK(quantizer_module->context().name.find("downsample") == std::string::npos);
  }
  auto x = torch::randn({2, 2, 8, 8}).requires_grad_();
  auto y = block.forward(x);
  CHECK(y.sizes() == torch::IntArrayRef({2, 4, 4, 4}));
  y.sum().backward();
  CHECK(x.grad().abs().sum().item<float>() > 0);
  // The stem and head have no nonlinearity; the part decides, not the fragment.
  for (auto part : {lowbit::NetworkPart::stem, lowbit::NetworkPart::head}) {
    auto dropped =
        layers->activation(lowbit::ActivationSpec{"act1", "", 4, lowbit::LayerRole::inner, part});
    check_close(dropped.forward(values({-3.0, 0.5})), values({-3.0, 0.5}));
  }
  auto body = layers->activation(lowbit::ActivationSpec{"act6", "", 4});
  check_close(body.forward(values({-3.0, 0.5})), values({-1.0, 1.0}));
}

TEST_CASE("bireal refuses blocks and models it does not define", "[bireal]") {
  auto quantizer = make_quantizer();
  lowbit::ModelStructure basic;
  basic.blocks.push_back(lowbit::BlockSpec{"layer1.0", 64, 64, 1});
  CHECK(quantizer->model_incompatibility(basic).empty());

  lowbit::ModelStructure bottleneck = basic;
  bottleneck.blocks.push_back(lowbit::BlockSpec{"layer1.1", 256, 256, 1, lowbit::LayerRole::inner,
                                                lowbit::BlockKind::bottleneck});
  CHECK_THAT(quantizer->model_incompatibility(bottleneck),
             Catch::Contains("basic blocks") && Catch::Contains("layer1.1 is a bottleneck block"));
  lowbit::ModelStructure preact;
  preact.blocks.push_back(lowbit::BlockSpec{"layer1.0", 16, 16, 1, lowbit::LayerRole::inner,
                                            lowbit::BlockKind::preact_basic});
  CHECK_THAT(quantizer->model_incompatibility(preact), Catch::Contains("pre-activation basic"));
  CHECK_THAT(quantizer->model_incompatibility(lowbit::ModelStructure{}),
             Catch::Contains("has none"));
  // "structure": "none" is a plain per-layer binary quantizer: any model.
  CHECK(make_quantizer({{"structure", "none"}})->model_incompatibility(bottleneck).empty());

  // The transform itself refuses too, for callers that skip the check.
  auto layers = quantizer->wrap_layers(std::make_shared<lowbit::testing::TestLayers>(quantizer, 1));
  CHECK_THROWS_WITH(
      layers->residual_block(bottleneck.blocks[1],
                             [](lowbit::LayerFactory&) { return torch::nn::AnyModule(); }),
      Catch::StartsWith("bireal: Bi-Real Net is defined for basic blocks"));
}

TEST_CASE("bireal full precision (SP, 32 bits) is clip(-1, 1) and real weights", "[bireal]") {
  auto quantizer = make_quantizer({{"weight_gradient", "clipped"}});
  lowbit::LayerContext context{"layer1.0.unit1.conv", "layer1.0", 1, 2, 2, ""};
  auto act = quantizer->make_activation_quantizer(context, 1);
  act->set_full_precision(true);
  check_close(act->forward(kX), values({-1, -1, -0.5, -0.25, 0, 0.25, 0.5, 1, 1}));
  act->set_full_precision(false);
  check_close(act->forward(kX), values({-1, -1, -1, -1, 1, 1, 1, 1, 1}));
  auto weight = quantizer->make_weight_quantizer(context, 1);
  weight->set_full_precision(true);
  check_close(weight->forward(spec_weight()), spec_weight());
  weight->set_bits(32);
  weight->set_full_precision(false);
  check_close(weight->forward(spec_weight()), spec_weight());
  CHECK_THROWS_WITH(weight->set_bits(2), Catch::Contains("takes 1 or 32 bits, not 2"));
  CHECK_THROWS(quantizer->make_activation_quantizer(context, 4));
}

TEST_CASE("bireal options and matrix points", "[bireal]") {
  CHECK_THROWS_AS(make_quantizer({{"weight_gradient", "paper"}}), lowbit::ConfigError);
  auto quantizer = make_quantizer();
  CHECK(quantizer->supported_bits().describe() == "1 or 32");
  // "structure": "none" keeps the model's own blocks.
  auto plain = make_quantizer({{"structure", "none"}});
  auto inner = std::make_shared<lowbit::testing::TestLayers>(plain, 1);
  CHECK(plain->wrap_layers(inner) == inner);
}
