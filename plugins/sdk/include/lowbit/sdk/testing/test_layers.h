#pragma once
// A minimal layer factory for quantizer plugin tests, which link only the SDK: convolutions use
// the plugin's weight quantizer exactly like the harness's QuantConv2d, and activations are the
// plugin's activation modules, both held to the quantizer's supported_bits() as the harness holds
// them. Installed with the SDK, for plugins outside the lowbit tree too.

#include <lowbit/sdk/layer_factory.h>
#include <lowbit/sdk/quantizer.h>

#include <torch/torch.h>

#include <memory>

namespace lowbit::testing {

class TestConv2dImpl : public torch::nn::Conv2dImpl {
 public:
  TestConv2dImpl(torch::nn::Conv2dOptions options, std::shared_ptr<WeightQuantizerImpl> quantizer)
      : torch::nn::Conv2dImpl(std::move(options)), quantizer_(std::move(quantizer)) {
    register_module("weight_quantizer", quantizer_);
  }
  torch::Tensor forward(const torch::Tensor& input) {
    return _conv_forward(input, quantizer_->forward(weight));
  }

 private:
  std::shared_ptr<WeightQuantizerImpl> quantizer_;
};
TORCH_MODULE(TestConv2d);

/// Every conv and activation quantized at `bits`.
class TestLayers : public LayerFactory {
 public:
  TestLayers(std::shared_ptr<const Quantizer> quantizer, int bits)
      : quantizer_(std::move(quantizer)), bits_(bits) {}

  torch::nn::AnyModule conv2d(const ConvSpec& spec) override {
    auto options = torch::nn::Conv2dOptions(spec.in_channels, spec.out_channels, spec.kernel)
                       .stride(spec.stride)
                       .padding(spec.padding)
                       .bias(false);
    LayerContext context{spec.name,         spec.fragment, spec.in_channels,
                         spec.out_channels, spec.kernel,   ""};
    return torch::nn::AnyModule(
        TestConv2d(options, quantizer_->make_weight_quantizer(context, bits_)));
  }
  torch::nn::AnyModule activation(const ActivationSpec& spec) override {
    LayerContext context{spec.name, spec.fragment, spec.channels, spec.channels, 1, ""};
    return torch::nn::AnyModule(quantizer_->make_activation_quantizer(context, bits_));
  }
  torch::nn::AnyModule linear(const LinearSpec& spec) override {
    return torch::nn::AnyModule(
        torch::nn::Linear(torch::nn::LinearOptions(spec.in_features, spec.out_features)));
  }

 private:
  std::shared_ptr<const Quantizer> quantizer_;
  int bits_;
};

}  // namespace lowbit::testing
