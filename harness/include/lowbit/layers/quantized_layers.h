#pragma once
// Convolution and linear layers whose weight passes through a quantizer on every forward pass,
// and the layer factory that decides, layer by layer, what gets quantized.

#include <lowbit/sdk/layer_factory.h>
#include <lowbit/sdk/quantizer.h>
#include <lowbit/sdk/registry.h>

#include <torch/torch.h>

#include <memory>

namespace lowbit {

/// A Conv2d that convolves with quantizer(weight). Subclassing Conv2dImpl keeps the parameter
/// names, initialisation and checkpoints of a plain conv (beware: clone() would give a plain one).
class QuantConv2dImpl : public torch::nn::Conv2dImpl {
 public:
  QuantConv2dImpl(torch::nn::Conv2dOptions options, std::shared_ptr<WeightQuantizerImpl> quantizer);
  torch::Tensor forward(const torch::Tensor& input);
  WeightQuantizerImpl& weight_quantizer() { return *weight_quantizer_; }

 private:
  std::shared_ptr<WeightQuantizerImpl> weight_quantizer_;
};
TORCH_MODULE(QuantConv2d);

class QuantLinearImpl : public torch::nn::LinearImpl {
 public:
  QuantLinearImpl(torch::nn::LinearOptions options, std::shared_ptr<WeightQuantizerImpl> quantizer);
  torch::Tensor forward(const torch::Tensor& input);
  WeightQuantizerImpl& weight_quantizer() { return *weight_quantizer_; }

 private:
  std::shared_ptr<WeightQuantizerImpl> weight_quantizer_;
};
TORCH_MODULE(QuantLinear);

/// Which layers a run quantizes, and to what.
struct PrecisionPolicy {
  int weight_bits = kFullPrecisionBits;
  int activation_bits = kFullPrecisionBits;
  /// The paper's "*" rows: the first conv, last FC and classifier input are quantized too.
  bool quantize_all = false;
};

/// Builds quantized layers from a run's quantizer; with no quantizer, plain full-precision layers.
/// Quantized layers get a quantizer even at 32 bits, so strategies can lower their precision later.
class QuantizedLayerFactory : public LayerFactory {
 public:
  QuantizedLayerFactory(std::shared_ptr<const Quantizer> quantizer, PrecisionPolicy policy);

  torch::nn::AnyModule conv2d(const ConvSpec& spec) override;
  torch::nn::AnyModule activation(const ActivationSpec& spec) override;
  torch::nn::AnyModule linear(const LinearSpec& spec) override;

 private:
  bool quantizes(LayerRole role) const;
  /// The input_activation of the next conv or linear layer, which then takes it.
  std::string take_pending_activation();

  std::shared_ptr<const Quantizer> quantizer_;
  PrecisionPolicy policy_;
  /// Recipes build a layer right after the activation that feeds it (the zoo's, and Bi-Real's
  /// and Group-Net's blocks; tested per model): the activation built last, not yet taken.
  std::string pending_activation_;
};

/// A model of the zoo as a run builds it: the quantizer's structural transform (Bi-Real's real
/// shortcuts, Group-Net's bases) around a QuantizedLayerFactory. A null quantizer gives the
/// full-precision model.
std::shared_ptr<NetworkImpl> build_network(const ModelFactory& model, const ModelSpec& spec,
                                           const std::shared_ptr<const Quantizer>& quantizer,
                                           const PrecisionPolicy& precision);

}  // namespace lowbit
