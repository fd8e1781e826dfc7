#pragma once
// What a quantizer plugin provides: per-layer modules that quantize a weight tensor or an
// activation. The harness's layer factory puts them into convolutions and activations; strategies
// change their precision at run time (PP sets bits, SP switches layers to full precision).

#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/layer_factory.h>

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lowbit {

struct ModelStructure;

/// Bit-width meaning "not quantized".
constexpr int kFullPrecisionBits = 32;

/// Where a quantizer sits, so that strategies can address layers and fragments by name.
struct LayerContext {
  std::string name;        ///< e.g. "layer1.0.conv1"
  std::string fragment;    ///< residual block the layer belongs to, e.g. "layer1.0" (SP "block")
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel = 1;      ///< square kernel size of a conv weight (1 for linear layers)
  /// A weight quantizer's layer reads the output of this activation (e.g. "layer1.0.act1" for
  /// "layer1.0.conv2"); "" when its input is no activation's or another layer already reads it
  /// (a projection shortcut). SP's "layer" fragment pairs the two.
  std::string input_activation;
};

/// Common state of every tensor quantizer: its target precision and a full-precision override.
class TensorQuantizerImpl : public torch::nn::Module {
 public:
  TensorQuantizerImpl(LayerContext context, int bits);

  const LayerContext& context() const { return context_; }
  int bits() const { return bits_; }
  /// Precision the layer quantizes to from now on; kFullPrecisionBits disables quantization.
  virtual void set_bits(int bits);
  /// Temporarily keeps the layer at full precision without forgetting its bits (SP).
  void set_full_precision(bool full_precision) { full_precision_ = full_precision; }
  bool is_quantizing() const { return !full_precision_ && bits_ < kFullPrecisionBits; }

  virtual torch::Tensor forward(torch::Tensor input) = 0;

 private:
  LayerContext context_;
  int bits_;
  bool full_precision_ = false;
};

/// Quantizes a layer's weight before every use.
class WeightQuantizerImpl : public TensorQuantizerImpl {
 public:
  using TensorQuantizerImpl::TensorQuantizerImpl;
  torch::Tensor forward(torch::Tensor weight) override {
    return is_quantizing() ? quantize(weight) : weight;
  }

 protected:
  virtual torch::Tensor quantize(const torch::Tensor& weight) = 0;
};

/// Replaces the nonlinearity in front of a quantized layer. At full precision it is the network's
/// ordinary nonlinearity (ReLU unless the quantizer says otherwise).
class ActivationQuantizerImpl : public TensorQuantizerImpl {
 public:
  using TensorQuantizerImpl::TensorQuantizerImpl;
  torch::Tensor forward(torch::Tensor input) override {
    return is_quantizing() ? quantize(input) : full_precision(input);
  }

 protected:
  virtual torch::Tensor quantize(const torch::Tensor& input) = 0;
  virtual torch::Tensor full_precision(const torch::Tensor& input) { return torch::relu(input); }
};

/// One configured quantizer of a run: makes the per-layer modules.
class Quantizer {
 public:
  virtual ~Quantizer() = default;
  virtual std::shared_ptr<WeightQuantizerImpl> weight_quantizer(const LayerContext& layer,
                                                                int bits) const = 0;
  virtual std::shared_ptr<ActivationQuantizerImpl> activation_quantizer(const LayerContext& layer,
                                                                        int bits) const = 0;

  /// Why this quantizer cannot run a matrix point (bit-widths and strategy names), or "" if it
  /// can. The experiment expansion skips such points and prints the reason.
  virtual std::string incompatibility(int weight_bits, int activation_bits,
                                      const std::vector<std::string>& strategies) const {
    (void)weight_bits;
    (void)activation_bits;
    (void)strategies;
    return "";
  }

  /// Why this quantizer cannot build a model of this structure (e.g. a structural transform
  /// defined for basic blocks only), or "" if it can. The experiment expansion skips such points
  /// with the reason, and building the network refuses the model with it.
  virtual std::string model_incompatibility(const ModelStructure& model) const {
    (void)model;
    return "";
  }

  /// A structural transform of the model recipe (e.g. Bi-Real's real shortcuts): the factory the
  /// model is built from. The default builds the model as it is.
  virtual std::shared_ptr<LayerFactory> wrap_layers(std::shared_ptr<LayerFactory> layers) const {
    return layers;
  }
};

/// Builds a Quantizer from the run's "options" object; reads every option it accepts through
/// `options` (unknown ones are then rejected by the harness).
using QuantizerFactory = std::function<std::unique_ptr<Quantizer>(const JsonReader& options)>;

}  // namespace lowbit
