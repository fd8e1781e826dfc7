// The SDK's shared pieces that plugins build on: bit-widths, elementwise and data-initialized
// quantizers, the grid a quantizer states, stage naming, own random streams, block refusal.

#include <lowbit/export/export.h>
#include <lowbit/layers/quantized_layers.h>
#include <lowbit/sdk/layer_factory.h>
#include <lowbit/sdk/network.h>
#include <lowbit/sdk/precision.h>
#include <lowbit/sdk/quantizer.h>
#include <lowbit/sdk/strategy.h>

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <sstream>

using Catch::Contains;

namespace {

lowbit::LayerContext layer(const std::string& name = "conv") {
  return lowbit::LayerContext{name, "layer1.0", 2, 2, 3, ""};
}

torch::Tensor identity(const torch::Tensor& x, int /*bits*/) { return x; }

/// A quantizer that only takes 1..2 bits (and 32).
class NarrowQuantizer : public lowbit::Quantizer {
 public:
  std::shared_ptr<lowbit::WeightQuantizerImpl> weight_quantizer(const lowbit::LayerContext& context,
                                                                int bits) const override {
    return std::make_shared<lowbit::ElementwiseWeightQuantizerImpl>(context, bits, identity);
  }
  std::shared_ptr<lowbit::ActivationQuantizerImpl> activation_quantizer(
      const lowbit::LayerContext& context, int bits) const override {
    return std::make_shared<lowbit::ElementwiseActivationQuantizerImpl>(context, bits, identity);
  }
  lowbit::BitWidths supported_bits() const override { return lowbit::BitWidths::up_to(2); }
};

/// LSQ-style: a step size set from the first batch, counted so a test sees how often.
class StepFromDataImpl : public lowbit::ActivationQuantizerImpl {
 public:
  StepFromDataImpl(lowbit::LayerContext context, int bits)
      : ActivationQuantizerImpl(std::move(context), bits) {
    step_ = register_parameter("step", torch::ones({}));
    enable_data_initialization();
  }
  int initializations = 0;

 protected:
  void initialize_from_data(const torch::Tensor& input) override {
    ++initializations;
    step_.copy_(2 * input.abs().mean());
  }
  torch::Tensor quantize(const torch::Tensor& input) override {
    return torch::round(input / step_) * step_;
  }

 private:
  torch::Tensor step_;
};

}  // namespace

TEST_CASE("bit-widths describe themselves and always take full precision", "[sdk]") {
  CHECK(lowbit::BitWidths::binary().describe() == "1 or 32");
  CHECK(lowbit::BitWidths::up_to(4).describe() == "1..4 or 32");
  CHECK(lowbit::BitWidths::all().describe() == "1..32");
  CHECK(lowbit::BitWidths::binary().contains(32));
  CHECK_FALSE(lowbit::BitWidths::binary().contains(2));
  CHECK(lowbit::BitWidths::up_to(4).contains(lowbit::Precision{4, 32}));
  CHECK_FALSE(lowbit::BitWidths::up_to(4).contains(lowbit::Precision{4, 8}));
  CHECK(lowbit::Precision{2, 2}.label() == "2W2A");
  CHECK(lowbit::Precision{32, 32} < lowbit::Precision{4, 4});
  CHECK(lowbit::Precision{32, 32}.is_full_precision());
}

TEST_CASE("a layer made through its quantizer refuses bit-widths the quantizer does not take",
          "[sdk]") {
  NarrowQuantizer quantizer;
  auto weight = quantizer.make_weight_quantizer(layer(), 2);
  weight->set_bits(1);
  weight->set_bits(32);
  CHECK_THROWS_WITH(weight->set_bits(4), Contains("takes 1..2 or 32 bits, not 4"));
  CHECK_THROWS_WITH(quantizer.make_activation_quantizer(layer(), 3), Contains("not 3"));
  // Made directly, a module takes any width: the quantizer's word is what holds it.
  auto direct = quantizer.weight_quantizer(layer(), 2);
  CHECK_NOTHROW(direct->set_bits(4));
}

TEST_CASE("elementwise quantizers apply their function, and ReLU or their own at full precision",
          "[sdk]") {
  auto doubled = [](const torch::Tensor& x, int bits) { return x * bits; };
  lowbit::ElementwiseActivationQuantizerImpl activation(layer(), 2, doubled);
  const auto x = torch::tensor({-1.0f, 0.5f});
  CHECK(torch::equal(activation.forward(x), torch::tensor({-2.0f, 1.0f})));
  activation.set_full_precision(true);
  CHECK(torch::equal(activation.forward(x), torch::tensor({0.0f, 0.5f})));
  lowbit::ElementwiseActivationQuantizerImpl clipped(
      layer(), 32, doubled, [](const torch::Tensor& t) { return t.clamp(-0.5, 0.25); });
  CHECK(torch::equal(clipped.forward(x), torch::tensor({-0.5f, 0.25f})));

  lowbit::ElementwiseWeightQuantizerImpl weight(layer(), 3, doubled);
  CHECK(torch::equal(weight.forward(x), torch::tensor({-3.0f, 1.5f})));
  CHECK_FALSE(weight.grid(x).has_value());
}

TEST_CASE("a quantizer initializes from its first training batch once, and its checkpoint says so",
          "[sdk]") {
  auto quantizer = std::make_shared<StepFromDataImpl>(layer(), 2);
  quantizer->eval();
  quantizer->forward(torch::full({4}, 3.0f));
  CHECK(quantizer->initializations == 0);  // not from evaluation data
  quantizer->train();
  quantizer->forward(torch::full({4}, 0.5f));
  quantizer->forward(torch::full({4}, 7.0f));
  CHECK(quantizer->initializations == 1);
  CHECK(quantizer->named_parameters()["step"].item<float>() == 1.0f);
  CHECK(quantizer->named_buffers()["data_initialized"].item<bool>());

  // A resumed trial loads the flag with the step and does not initialize again.
  std::stringstream stream;
  torch::save(quantizer, stream);
  auto resumed = std::make_shared<StepFromDataImpl>(layer(), 2);
  torch::load(resumed, stream);
  resumed->train();
  resumed->forward(torch::full({4}, 5.0f));
  CHECK(resumed->initializations == 0);
  CHECK(resumed->named_parameters()["step"].item<float>() == 1.0f);
  // At full precision nothing is quantized, so nothing is initialized either.
  auto held = std::make_shared<StepFromDataImpl>(layer(), 2);
  held->set_full_precision(true);
  held->forward(torch::full({4}, 5.0f));
  CHECK(held->initializations == 0);
}

TEST_CASE("export codes follow the grid a quantizer states, per channel too", "[sdk][export]") {
  const auto alpha = torch::tensor({0.5, 2.0}).reshape({2, 1});
  const auto quantized = torch::tensor({{0.5, -0.5, 0.5}, {-2.0, 2.0, 2.0}});
  torch::Tensor codes;
  REQUIRE(lowbit::grid_codes(quantized, lowbit::scaled_sign_grid(alpha, false), codes));
  CHECK(torch::equal(codes, torch::tensor({{1, 0, 1}, {0, 1, 1}}, torch::kUInt8)));
  // sign(0) = 0 makes zero a third level.
  REQUIRE(lowbit::grid_codes(torch::tensor({{0.0, 0.5, -0.5}}),
                             lowbit::scaled_sign_grid(torch::tensor({0.5}), true), codes));
  CHECK(torch::equal(codes, torch::tensor({{1, 2, 0}}, torch::kUInt8)));
  // Off the stated grid.
  CHECK_FALSE(
      lowbit::grid_codes(torch::tensor({{0.25}}), lowbit::scaled_sign_grid(alpha, false), codes));
}

TEST_CASE("strategies name the stages they plan, nested ones readably", "[sdk]") {
  lowbit::Stage stage;
  lowbit::name_planned_stage(stage, "ts1", lowbit::LabelPosition::first);
  CHECK(stage.name == "ts1");
  CHECK(stage.planned);
  lowbit::name_planned_stage(stage, "pp4W4A");
  CHECK(stage.name == "ts1/pp4W4A");
  lowbit::Stage other;
  lowbit::name_planned_stage(other, "pp8W8A");
  lowbit::name_planned_stage(other, "ts2", lowbit::LabelPosition::first);
  CHECK(other.name == "ts2/pp8W8A");
}

TEST_CASE("a strategy's own random stream depends on seed, tag and step only", "[sdk]") {
  auto draw = [](uint64_t seed, uint64_t tag, int64_t step) {
    auto stream = lowbit::own_random_stream(seed, tag, step);
    return lowbit::unit_interval(stream);
  };
  CHECK(draw(7, 1, 12) == draw(7, 1, 12));
  CHECK(draw(7, 1, 12) != draw(7, 2, 12));
  CHECK(draw(7, 1, 12) != draw(7, 1, 13));
  CHECK(draw(7, 1, 12) != draw(8, 1, 12));
  auto stream = lowbit::own_random_stream(1, 2, 3);
  for (int i = 0; i < 1000; ++i) {
    const double value = lowbit::unit_interval(stream);
    CHECK((value >= 0.0 && value < 1.0));
  }
}

TEST_CASE("a block-replacing transform refuses models without the blocks it defines", "[sdk]") {
  auto refuse_bottlenecks = [](const lowbit::BlockSpec& block) {
    return block.kind == lowbit::BlockKind::bottleneck ? "no bottlenecks: " + block.name
                                                       : std::string();
  };
  lowbit::ModelStructure none;
  CHECK(lowbit::refuse_blocks(none, "needs blocks", refuse_bottlenecks) == "needs blocks");
  lowbit::ModelStructure mixed;
  mixed.blocks.push_back(lowbit::BlockSpec{"layer1.0"});
  CHECK(lowbit::refuse_blocks(mixed, "needs blocks", refuse_bottlenecks).empty());
  lowbit::BlockSpec bottleneck{"layer2.0"};
  bottleneck.kind = lowbit::BlockKind::bottleneck;
  mixed.blocks.push_back(bottleneck);
  CHECK(lowbit::refuse_blocks(mixed, "needs blocks", refuse_bottlenecks) ==
        "no bottlenecks: layer2.0");
}

TEST_CASE("a decorator drops stem and head activations when asked", "[sdk]") {
  class Plain : public lowbit::LayerFactory {
   public:
    torch::nn::AnyModule conv2d(const lowbit::ConvSpec&) override { return relu(); }
    torch::nn::AnyModule activation(const lowbit::ActivationSpec&) override { return relu(); }
    torch::nn::AnyModule linear(const lowbit::LinearSpec&) override { return relu(); }

   private:
    static torch::nn::AnyModule relu() { return torch::nn::AnyModule(torch::nn::ReLU()); }
  };
  auto plain = std::make_shared<Plain>();
  lowbit::LayerFactoryDecorator keeping(plain);
  lowbit::LayerFactoryDecorator dropping(plain, lowbit::OutsideActivations::drop);
  const auto x = torch::tensor({-1.0f});
  lowbit::ActivationSpec stem{"act1", "", 1};
  stem.part = lowbit::NetworkPart::stem;
  lowbit::ActivationSpec body{"layer1.0.act1", "layer1.0", 1};
  CHECK(keeping.activation(stem).forward(x).item<float>() == 0.0f);
  CHECK(dropping.activation(stem).forward(x).item<float>() == -1.0f);
  CHECK(dropping.activation(body).forward(x).item<float>() == 0.0f);
}

namespace {

/// One quantized conv whose weights take the non-uniform levels {0, 0.1, 0.5}.
class NonUniformNet : public lowbit::NetworkImpl {
 public:
  NonUniformNet() {
    auto levels = [](const torch::Tensor& w, int /*bits*/) {
      return torch::where(w > 0.3, torch::full_like(w, 0.5),
                          torch::where(w > 0, torch::full_like(w, 0.1), torch::zeros_like(w)));
    };
    conv_ = register_module(
        "conv", lowbit::QuantConv2d(
                    torch::nn::Conv2dOptions(1, 1, 2).bias(false),
                    std::make_shared<lowbit::ElementwiseWeightQuantizerImpl>(layer(), 2, levels)));
    torch::NoGradGuard no_grad;
    conv_->weight.copy_(torch::tensor({0.4f, 0.2f, -0.1f, 0.9f}).reshape({1, 1, 2, 2}));
  }
  lowbit::NetworkOutput forward(torch::Tensor images) override {
    return {conv_->forward(images), {}};
  }

 private:
  lowbit::QuantConv2d conv_{nullptr};
};

}  // namespace

TEST_CASE("export says which quantized layers it wrote without codes", "[sdk][export]") {
  auto network = std::make_shared<NonUniformNet>();
  auto exported = lowbit::export_tensors(*network, 2);
  REQUIRE(exported.without_codes.size() == 1);
  CHECK_THAT(exported.without_codes[0], Contains("conv") && Contains("states no grid"));
  CHECK(exported.tensors.contains("conv.weight_quantized"));
  CHECK_FALSE(exported.tensors.contains("conv.weight_codes"));
  CHECK_THAT(exported.tensors.at("__format__").toStringRef(),
             Contains("Layers without codes: conv"));
}
