// Group-Net against the vectors of the quantizer spec (§7.1, §7.4, shared/spec/
// vectors_quantizers.txt, from the authors' own Q_A, Q_W and model_ablation_1 BasicBlock), and
// the plugin as the harness uses it: modules and the block transform from the entry point.

#include "groupnet.h"

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

using namespace lowbit::groupnet;

using lowbit::testing::check_close;
using lowbit::testing::kTolerance;
using lowbit::testing::values;

std::shared_ptr<lowbit::Quantizer> make_quantizer(
    const nlohmann::json& options = nlohmann::json::object()) {
  return lowbit::testing::make_plugin_quantizer("groupnet", options);
}

const torch::Tensor kX = values({-1.5, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 1.5});

torch::Tensor activation_gradient(ActivationGradient gradient, float upstream) {
  auto x = kX.clone().requires_grad_();
  auto y = binary_activation(x, gradient);
  check_close(y, values({-1, -1, -1, -1, 1, 1, 1, 1, 1}));
  (y * upstream).sum().backward();
  return x.grad();
}

/// A one-channel block of `bases` bases built by the plugin's transform.
torch::nn::AnyModule spec_block(int64_t bases, const std::string& aggregation = "scales") {
  auto quantizer = make_quantizer({{"bases", bases}, {"aggregation", aggregation}});
  auto layers = quantizer->wrap_layers(std::make_shared<lowbit::testing::TestLayers>(quantizer, 1));
  return layers->residual_block(lowbit::BlockSpec{"layer1.1", 1, 1, 1},
                                [](lowbit::LayerFactory&) { return torch::nn::AnyModule(); });
}

const torch::Tensor kW = values({0.3, -0.1, 0.2, -0.4, 0.5, 0.1, -0.2, 0.05, 0.25});

}  // namespace

TEST_CASE("groupnet Q_A: ApproxSign, the reference's x == 1 quirk, the paper's clipped STE",
          "[groupnet]") {
  check_close(activation_gradient(ActivationGradient::approx_sign, 1.0f),
              values({0, 0, 1, 1.5, 2, 1.5, 1, 0, 0}));
  check_close(activation_gradient(ActivationGradient::reference, 1.0f),
              values({0, 0, 1, 1.5, 2, 1.5, 1, 1, 0}));
  check_close(activation_gradient(ActivationGradient::reference, 0.5f),
              values({0, 0, 0.5, 0.75, 1, 0.75, 0.5, 0.25, 0}));
  check_close(activation_gradient(ActivationGradient::clipped, 1.0f),
              values({0, 1, 1, 1, 1, 1, 1, 1, 0}));
  check_close(binary_activation(kX, ActivationGradient::approx_sign, SignZero::zero),
              values({-1, -1, -1, -1, 0, 1, 1, 1, 1}));
}

TEST_CASE("groupnet Q_W: per-tensor alpha, identity gradient", "[groupnet]") {
  auto w = torch::stack({values({0.5, -0.25, 0.1, -1.5}), values({0.2, 0.2, -0.2, 0.4})})
               .requires_grad_();
  auto wb = binary_weight(w);
  const float a = 0.41875f;
  check_close(wb, values({a, -a, a, -a, a, a, -a, a}).reshape({2, 4}));
  auto upstream = values({1, 2, 3, 4, 5, 6, 7, 8}).reshape({2, 4});
  (wb * upstream).sum().backward();
  check_close(w.grad(), upstream);
  // The per-channel alternative uses Bi-Real's alphas.
  check_close(binary_weight(w.detach(), WeightScale::channel)[1],
              values({0.25, 0.25, -0.25, 0.25}));
}

TEST_CASE("groupnet pads binary convs with +1", "[groupnet]") {
  auto padded = pad_with_ones(values({1, -1, -1, 1}).reshape({1, 1, 2, 2}), 1);
  check_close(padded[0][0],
              values({1, 1, 1, 1, 1, 1, -1, 1, 1, -1, 1, 1, 1, 1, 1, 1}).reshape({4, 4}));
}

TEST_CASE("groupnet bases reproduce the authors' block (ablation_1 vector)", "[groupnet]") {
  // The reference's gated block feeds base k the mixture 0.5 b_k + 0.5 mean (theta = 0); our
  // bases compute the same function of their input, so each base is checked on that mixture
  // with a single-base block whose scale is 1.
  const auto x = values({-0.6, 0.2, 1.3, 0.1, -1.2, 0.4, 0.7, -0.3, 0.9}).reshape({1, 1, 3, 3});
  const auto b1 = x, b2 = -0.5 * x, mean = 0.6 * b1 + 0.4 * b2;
  const auto reversed = kW.flip(0).reshape({1, 1, 3, 3});
  auto base_output = [&](const torch::Tensor& input, const torch::Tensor& conv1) {
    auto block = spec_block(1);
    auto params = block.ptr()->named_parameters();
    torch::NoGradGuard no_grad;
    params["base0.conv1.weight"].copy_(conv1.reshape({1, 1, 3, 3}));
    params["base0.conv2.weight"].copy_(reversed);
    params["scales"].fill_(1.0);
    block.ptr()->eval();
    return block.forward(input);
  };
  auto base0 = base_output(0.5 * b1 + 0.5 * mean, kW);
  auto base1 = base_output(0.5 * b2 + 0.5 * mean, -kW);
  check_close(base0, values({-0.42, 1.5399928, 2.3099928, 1.0033286, -0.84, 2.1466572, 1.6566608,
                             0.7233286, 1.5633285})
                         .reshape({1, 1, 3, 3}));
  check_close(base1, values({0.9633286, 1.389993, 0.1683322, 1.8616571, 0.2933321, 0.9133285,
                             0.1983322, 0.9483286, 0.1883322})
                         .reshape({1, 1, 3, 3}));
  check_close(0.6 * base0 + 0.4 * base1,
              values({0.1333314, 1.4799929, 1.4533286, 1.34666, -0.3866672, 1.6533258, 1.0733293,
                      0.8133286, 1.01333})
                  .reshape({1, 1, 3, 3}));
}

TEST_CASE("groupnet block: K bases, learned scales or mean, shared binary downsample",
          "[groupnet]") {
  auto block = spec_block(3);
  auto params = block.ptr()->named_parameters();
  REQUIRE(params.contains("scales"));
  CHECK(params["scales"].sizes() == torch::IntArrayRef({3}));
  CHECK(params.contains("base2.conv2.weight"));
  CHECK_FALSE(params.contains("base3.conv1.weight"));
  // Y = sum_k lambda_k o2_k: scaling every lambda scales the output; gradients reach lambda.
  auto x = torch::randn({2, 1, 5, 5});
  block.ptr()->eval();
  auto y = block.forward(x);
  {
    torch::NoGradGuard no_grad;
    params["scales"].mul_(2.0);
  }
  check_close(block.forward(x), 2 * y, 1e-4);
  block.forward(x).sum().backward();
  CHECK(params["scales"].grad().abs().sum().item<float>() > 0);

  auto mean_block = spec_block(2, "mean");
  CHECK_FALSE(mean_block.ptr()->named_parameters().contains("scales"));

  auto quantizer = make_quantizer({{"bases", 2}});
  auto layers = quantizer->wrap_layers(std::make_shared<lowbit::testing::TestLayers>(quantizer, 1));
  auto down = layers->residual_block(lowbit::BlockSpec{"layer2.0", 2, 4, 2},
                                     [](lowbit::LayerFactory&) { return torch::nn::AnyModule(); });
  auto down_params = down.ptr()->named_parameters();
  REQUIRE(down_params.contains("downsample.weight"));
  CHECK(down_params["downsample.weight"].sizes() == torch::IntArrayRef({4, 2, 1, 1}));
  // The downsample conv is binary: it has a weight quantizer.
  int downsample_quantizers = 0;
  for (const auto& module : lowbit::tensor_quantizers(*down.ptr())) {
    if (module->context().name == "layer2.0.downsample") ++downsample_quantizers;
  }
  CHECK(downsample_quantizers == 1);
  CHECK(down.forward(torch::randn({1, 2, 8, 8})).sizes() == torch::IntArrayRef({1, 4, 4, 4}));
}

TEST_CASE("groupnet full precision (SP, 32 bits) is tanh and real weights", "[groupnet]") {
  auto quantizer = make_quantizer();
  lowbit::LayerContext context{"layer1.0.base0.sign2", "layer1.0", 1, 1, 1, ""};
  auto act = quantizer->make_activation_quantizer(context, 1);
  act->set_full_precision(true);
  check_close(act->forward(kX), torch::tanh(kX));
  auto weight = quantizer->make_weight_quantizer(context, 32);
  check_close(weight->forward(kX.reshape({1, 9})), kX.reshape({1, 9}));
  CHECK_THROWS(weight->set_bits(4));
}

TEST_CASE("groupnet soft gate mixes a base with the aggregate", "[groupnet]") {
  const auto base = values({0.8}), mean = values({-0.4});
  check_close(soft_gate(base, mean, values({0.0})), values({0.2}));
  check_close(soft_gate(base, mean, values({2.0})), values({0.6569564}));
}

TEST_CASE("groupnet gated blocks feed base k of the block before into base k", "[groupnet]") {
  auto quantizer = make_quantizer({{"bases", 2}, {"gates", true}});
  auto layers = quantizer->wrap_layers(std::make_shared<lowbit::testing::TestLayers>(quantizer, 1));
  auto none = [](lowbit::LayerFactory&) { return torch::nn::AnyModule(); };
  auto first = layers->residual_block(lowbit::BlockSpec{"layer1.0", 1, 1, 1}, none);
  auto second = layers->residual_block(lowbit::BlockSpec{"layer1.1", 1, 1, 1}, none);
  CHECK_FALSE(first.ptr()->named_parameters().contains("gate"));  // the first block has no gate
  auto p1 = first.ptr()->named_parameters();
  auto p2 = second.ptr()->named_parameters();
  REQUIRE(p2.contains("gate"));
  {
    // Zero weights make every binary conv 0 (alpha = 0), so base k outputs input + its BN biases.
    torch::NoGradGuard no_grad;
    for (auto& item : p1) {
      if (item.key().find("conv") != std::string::npos) item.value().zero_();
    }
    for (auto& item : p2) {
      if (item.key().find("conv") != std::string::npos) item.value().zero_();
    }
    p1["base0.bn1.bias"].fill_(0.3);
    p1["base1.bn2.bias"].fill_(-0.2);
    p1["scales"].fill_(0.5);
    p2["gate"].fill_(0.0);
    p2["scales"].copy_(values({0.6, 0.4}));
  }
  first.ptr()->eval();
  second.ptr()->eval();
  const auto x = values({-0.6, 0.2, 1.3, 0.1}).reshape({1, 1, 2, 2});
  // Block 1: bases x + 0.3 and x - 0.2, Y1 = x + 0.05. Block 2 (gate 1/2): base inputs
  // x + 0.175 and x - 0.075, Y2 = 0.6 (x + 0.175) + 0.4 (x - 0.075) = x + 0.075.
  auto y1 = first.forward(x);
  check_close(y1, x + 0.05);
  check_close(second.forward(y1), x + 0.075);
  // The hand-over is one-shot: block 2 cannot run twice on one pass of block 1.
  CHECK_THROWS(second.forward(y1));
}

TEST_CASE("groupnet's stem is conv -> max-pool -> BN, its stem and head have no ReLU",
          "[groupnet]") {
  auto quantizer = make_quantizer();
  auto layers = quantizer->wrap_layers(std::make_shared<lowbit::testing::TestLayers>(quantizer, 1));
  lowbit::StemSpec spec;
  spec.in_channels = 3;
  spec.out_channels = 8;
  spec.kernel = 7;
  spec.stride = 2;
  spec.max_pool = true;
  bool standard_called = false;
  auto stem = layers->stem(spec, [&](lowbit::LayerFactory&) {
    standard_called = true;
    return torch::nn::Sequential();
  });
  CHECK_FALSE(standard_called);
  std::vector<std::string> order;
  for (const auto& child : stem->named_children()) order.push_back(child.key());
  CHECK(order == std::vector<std::string>{"conv1", "pool", "bn1"});
  CHECK(stem->forward(torch::randn({2, 3, 32, 32})).sizes() == torch::IntArrayRef({2, 8, 8, 8}));
  // A stem without pooling (CIFAR) is conv -> BN.
  spec.max_pool = false;
  order.clear();
  for (const auto& child : layers->stem(spec, nullptr)->named_children())
    order.push_back(child.key());
  CHECK(order == std::vector<std::string>{"conv1", "bn1"});

  for (auto part : {lowbit::NetworkPart::stem, lowbit::NetworkPart::head}) {
    auto dropped =
        layers->activation(lowbit::ActivationSpec{"act1", "", 4, lowbit::LayerRole::inner, part});
    check_close(dropped.forward(values({-3.0, 0.5})), values({-3.0, 0.5}));
  }
}

TEST_CASE("groupnet refuses bottleneck and pre-activation blocks and block-less models",
          "[groupnet]") {
  auto quantizer = make_quantizer();
  lowbit::ModelStructure basic;
  basic.blocks.push_back(lowbit::BlockSpec{"layer1.0", 64, 64, 1});
  CHECK(quantizer->model_incompatibility(basic).empty());
  lowbit::ModelStructure resnet50;
  resnet50.blocks.push_back(lowbit::BlockSpec{"layer1.0", 64, 256, 1, lowbit::LayerRole::inner,
                                              lowbit::BlockKind::bottleneck});
  CHECK_THAT(quantizer->model_incompatibility(resnet50),
             Catch::Contains("bottleneck base") && Catch::Contains("layer1.0"));
  lowbit::ModelStructure preact;
  preact.blocks.push_back(lowbit::BlockSpec{"layer1.0", 16, 16, 1, lowbit::LayerRole::inner,
                                            lowbit::BlockKind::preact_basic});
  CHECK_THAT(quantizer->model_incompatibility(preact), Catch::Contains("post-activation"));
  CHECK_THAT(quantizer->model_incompatibility(lowbit::ModelStructure{}),
             Catch::Contains("has none"));
  CHECK(make_quantizer({{"structure", "none"}})->model_incompatibility(resnet50).empty());
  auto layers = quantizer->wrap_layers(std::make_shared<lowbit::testing::TestLayers>(quantizer, 1));
  CHECK_THROWS_WITH(
      layers->residual_block(resnet50.blocks[0],
                             [](lowbit::LayerFactory&) { return torch::nn::AnyModule(); }),
      Catch::StartsWith("groupnet: Group-Net's bases are defined for basic blocks"));
}

TEST_CASE("groupnet options and matrix points", "[groupnet]") {
  CHECK_THROWS_AS(make_quantizer({{"bases", 0}}), lowbit::ConfigError);
  CHECK_THROWS_AS(make_quantizer({{"aggregation", "gates"}}), lowbit::ConfigError);
  CHECK_THROWS_AS(make_quantizer({{"gates", "yes"}}), lowbit::ConfigError);
  auto quantizer = make_quantizer();
  CHECK(quantizer->supported_bits().describe() == "1 or 32");
  auto plain = make_quantizer({{"structure", "none"}});
  auto inner = std::make_shared<lowbit::testing::TestLayers>(plain, 1);
  CHECK(plain->wrap_layers(inner) == inner);
}
