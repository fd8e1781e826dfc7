// PACT's own test, built by lowbit_add_plugin_test: the plugin's objects are linked in, so the
// quantizer is made through its entry point, as `lowbit` makes it after loading the library.

#include <lowbit/sdk/testing/plugin_test.h>
#include <lowbit/sdk/testing/test_layers.h>

#include <catch2/catch.hpp>
#include <torch/torch.h>

using lowbit::testing::check_close;
using lowbit::testing::make_plugin_quantizer;
using lowbit::testing::values;

namespace {

lowbit::LayerContext layer() { return lowbit::LayerContext{"conv", "block", 1, 1, 3, ""}; }

}  // namespace

TEST_CASE("PACT activations clip at alpha and take 2^k - 1 uniform levels", "[pact]") {
  auto quantizer = make_plugin_quantizer("pact", {{"alpha_init", 3.0}});
  auto activation = quantizer->make_activation_quantizer(layer(), 2);
  auto x = values({-1.0f, 0.4f, 0.6f, 1.6f, 2.9f, 7.0f}).requires_grad_();
  auto y = activation->forward(x);
  // alpha 3, levels 0, 1, 2, 3 (n = 3): round(clip(x, 0, 3)) here.
  check_close(y, values({0.0f, 0.0f, 1.0f, 2.0f, 3.0f, 3.0f}));

  y.sum().backward();
  // Straight through on [0, alpha]; dy/dalpha collects the clipped inputs.
  check_close(x.grad(), values({0.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f}));
  const auto alpha = activation->named_parameters()["alpha"];
  check_close(alpha.grad(), values({1.0f}));

  // At 32 bits, or held at full precision by a strategy, it is ReLU.
  activation->set_bits(32);
  check_close(activation->forward(values({-1.0f, 5.0f})), values({0.0f, 5.0f}));
}

TEST_CASE("PACT weights lie on the grid they state", "[pact]") {
  auto quantizer = make_plugin_quantizer("pact", nullptr);
  auto weight_quantizer = quantizer->make_weight_quantizer(layer(), 2);
  const auto weight = torch::linspace(-2, 2, 9).reshape({1, 1, 3, 3});
  const auto quantized = weight_quantizer->forward(weight);
  const auto grid = weight_quantizer->grid(weight);
  REQUIRE(grid.has_value());
  CHECK(grid->levels == 4);
  const auto codes = ((quantized.to(torch::kDouble) - grid->offset) / grid->scale).round();
  CHECK(codes.min().item<double>() == 0);
  CHECK(codes.max().item<double>() == 3);
  check_close(codes * grid->scale + grid->offset, quantized);
}

TEST_CASE("PACT trains inside a network built through the layer factory", "[pact]") {
  torch::manual_seed(0);
  std::shared_ptr<const lowbit::Quantizer> quantizer = make_plugin_quantizer("pact", nullptr);
  lowbit::testing::TestLayers layers(quantizer, 2);
  lowbit::ConvSpec spec;
  spec.name = "conv";
  spec.in_channels = 1;
  spec.out_channels = 2;
  auto conv = layers.conv2d(spec);
  auto activation = layers.activation(lowbit::ActivationSpec{"act", "", 2});
  auto output = activation.forward(conv.forward(torch::randn({2, 1, 5, 5})));
  CHECK(output.sizes() == torch::IntArrayRef({2, 2, 3, 3}));
  output.sum().backward();
  for (const auto& parameter : conv.ptr()->parameters()) CHECK(parameter.grad().defined());
}
