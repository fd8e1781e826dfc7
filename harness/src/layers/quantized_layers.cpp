#include <lowbit/layers/quantized_layers.h>

#include <stdexcept>

namespace lowbit {

QuantConv2dImpl::QuantConv2dImpl(torch::nn::Conv2dOptions options,
                                 std::shared_ptr<WeightQuantizerImpl> quantizer)
    : torch::nn::Conv2dImpl(std::move(options)), weight_quantizer_(std::move(quantizer)) {
  register_module("weight_quantizer", weight_quantizer_);
}

torch::Tensor QuantConv2dImpl::forward(const torch::Tensor& input) {
  return _conv_forward(input, weight_quantizer_->forward(weight));
}

QuantLinearImpl::QuantLinearImpl(torch::nn::LinearOptions options,
                                 std::shared_ptr<WeightQuantizerImpl> quantizer)
    : torch::nn::LinearImpl(std::move(options)), weight_quantizer_(std::move(quantizer)) {
  register_module("weight_quantizer", weight_quantizer_);
}

torch::Tensor QuantLinearImpl::forward(const torch::Tensor& input) {
  return torch::nn::functional::linear(input, weight_quantizer_->forward(weight), bias);
}

QuantizedLayerFactory::QuantizedLayerFactory(std::shared_ptr<const Quantizer> quantizer,
                                             PrecisionPolicy policy)
    : quantizer_(std::move(quantizer)), policy_(policy) {}

bool QuantizedLayerFactory::quantizes(LayerRole role) const {
  return quantizer_ != nullptr && (role == LayerRole::inner || policy_.quantize_all);
}

std::string QuantizedLayerFactory::take_pending_activation() {
  auto taken = std::move(pending_activation_);
  pending_activation_.clear();
  return taken;
}

torch::nn::AnyModule QuantizedLayerFactory::conv2d(const ConvSpec& spec) {
  auto options = torch::nn::Conv2dOptions(spec.in_channels, spec.out_channels, spec.kernel)
                     .stride(spec.stride)
                     .padding(spec.padding)
                     .bias(false);
  auto input_activation = take_pending_activation();
  if (!quantizes(spec.role)) return torch::nn::AnyModule(torch::nn::Conv2d(options));
  LayerContext context{spec.name,         spec.fragment, spec.in_channels,
                       spec.out_channels, spec.kernel,   std::move(input_activation)};
  return torch::nn::AnyModule(
      QuantConv2d(options, quantizer_->make_weight_quantizer(context, policy_.weight_bits)));
}

torch::nn::AnyModule QuantizedLayerFactory::activation(const ActivationSpec& spec) {
  // Not in place: a structural transform may read the activation's input again (e.g. as a
  // real-valued shortcut), and an in-place ReLU would change it under that reader.
  pending_activation_ = spec.name;
  if (!quantizes(spec.role)) return torch::nn::AnyModule(torch::nn::ReLU());
  LayerContext context{spec.name, spec.fragment, spec.channels, spec.channels, 1, ""};
  auto quantizer = quantizer_->make_activation_quantizer(context, policy_.activation_bits);
  return torch::nn::AnyModule(std::move(quantizer));
}

torch::nn::AnyModule QuantizedLayerFactory::linear(const LinearSpec& spec) {
  auto options = torch::nn::LinearOptions(spec.in_features, spec.out_features);
  auto input_activation = take_pending_activation();
  if (!quantizes(spec.role)) return torch::nn::AnyModule(torch::nn::Linear(options));
  LayerContext context{spec.name,         "", spec.in_features,
                       spec.out_features, 1,  std::move(input_activation)};
  return torch::nn::AnyModule(
      QuantLinear(options, quantizer_->make_weight_quantizer(context, policy_.weight_bits)));
}

std::shared_ptr<NetworkImpl> build_network(const ModelFactory& model, const ModelSpec& spec,
                                           const std::shared_ptr<const Quantizer>& quantizer,
                                           const PrecisionPolicy& precision) {
  std::shared_ptr<LayerFactory> layers =
      std::make_shared<QuantizedLayerFactory>(quantizer, precision);
  if (quantizer) {
    // Also checked when the experiment is read; this catches callers that build directly.
    const auto reason = quantizer->model_incompatibility(describe_model(model, spec));
    if (!reason.empty()) throw std::invalid_argument(reason);
    layers = quantizer->wrap_layers(std::move(layers));
  }
  return model(spec, *layers);
}

}  // namespace lowbit
