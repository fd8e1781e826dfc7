#pragma once
// What a quantizer plugin provides: per-layer modules that quantize a weight tensor or an
// activation. The harness's layer factory puts them into convolutions and activations; strategies
// change their precision at run time (PP sets bits, SP switches layers to full precision).

#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/layer_factory.h>
#include <lowbit/sdk/precision.h>

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lowbit {

struct ModelStructure;

/// Where a quantizer sits, so that strategies can address layers and fragments by name.
struct LayerContext {
  std::string name;      ///< e.g. "layer1.0.conv1"
  std::string fragment;  ///< residual block the layer belongs to, e.g. "layer1.0" (SP "block")
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel = 1;  ///< square kernel size of a conv weight (1 for linear layers)
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
  /// Throws for a width outside supported_bits().
  virtual void set_bits(int bits);
  /// The widths set_bits accepts: Quantizer::make_*_quantizer holds a layer to its quantizer's
  /// supported_bits(), and the bits it is made with must be among them.
  void restrict_bits(const BitWidths& supported);
  const BitWidths& supported_bits() const { return supported_; }
  /// Temporarily keeps the layer at full precision without forgetting its bits (SP).
  void set_full_precision(bool full_precision) { full_precision_ = full_precision; }
  bool is_quantizing() const { return !full_precision_ && bits_ < kFullPrecisionBits; }

  virtual torch::Tensor forward(torch::Tensor input) = 0;

 protected:
  /// Opts in to initialize_from_data(); call from the constructor. Whether it has run is the
  /// buffer "data_initialized", so checkpoints carry it and a resumed trial does not run it again.
  void enable_data_initialization();
  /// Sets learned state from data (LSQ-style step sizes from the first batch): called once, with
  /// the first tensor the layer quantizes while training (the weight, or the activation's input),
  /// before quantizing it, under NoGradGuard. A layer loaded from a source without this buffer
  /// (a full-precision model) has not run it. Register the state it sets in the constructor.
  virtual void initialize_from_data(const torch::Tensor& input) { (void)input; }
  /// Runs initialize_from_data() if this layer opted in and has not run it yet.
  void initialize_once(const torch::Tensor& input);

 private:
  LayerContext context_;
  int bits_;
  BitWidths supported_ = BitWidths::all();
  bool full_precision_ = false;
  torch::Tensor data_initialized_;
  /// Spares a device read per forward pass once the buffer says so.
  bool known_initialized_ = false;
};

/// The integer grid a layer's quantized weights lie on:
///   weight_quantized = code * scale + offset, code in 0 .. levels - 1.
/// `scale` and `offset` are scalars or broadcast per output channel (shape [C, 1, 1, 1]).
struct WeightGrid {
  torch::Tensor scale;
  torch::Tensor offset;
  int64_t levels = 0;
};

/// The grid of scaled binary weights alpha * sign(w) (alpha a scalar or per output channel):
/// {-alpha, +alpha}, or {-alpha, 0, +alpha} for a sign with sign(0) = 0.
WeightGrid scaled_sign_grid(const torch::Tensor& alpha, bool zero_is_a_level);

/// Quantizes a layer's weight before every use.
class WeightQuantizerImpl : public TensorQuantizerImpl {
 public:
  using TensorQuantizerImpl::TensorQuantizerImpl;
  torch::Tensor forward(torch::Tensor weight) override {
    if (!is_quantizing()) return weight;
    initialize_once(weight);
    return quantize(weight);
  }
  /// The grid quantize(weight) lies on at the current bits, so `lowbit export` can write integer
  /// codes; nullopt when the levels are not uniform (LQ-Net) or the quantizer does not say.
  virtual std::optional<WeightGrid> grid(const torch::Tensor& weight) const {
    (void)weight;
    return std::nullopt;
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
    if (!is_quantizing()) return full_precision(input);
    initialize_once(input);
    return quantize(input);
  }

 protected:
  virtual torch::Tensor quantize(const torch::Tensor& input) = 0;
  virtual torch::Tensor full_precision(const torch::Tensor& input) { return torch::relu(input); }
};

/// A quantizer that is one function of the tensor and the bits, with no state of its own
/// (DoReFa, PACT's weights): the function is the whole plugin-specific part.
using ElementwiseQuantization = std::function<torch::Tensor(const torch::Tensor& x, int bits)>;
/// Its grid at `bits` for a weight (WeightQuantizerImpl::grid); empty for none.
using ElementwiseGrid =
    std::function<std::optional<WeightGrid>(const torch::Tensor& weight, int bits)>;

class ElementwiseWeightQuantizerImpl : public WeightQuantizerImpl {
 public:
  ElementwiseWeightQuantizerImpl(LayerContext layer, int bits, ElementwiseQuantization quantize,
                                 ElementwiseGrid grid = {});
  std::optional<WeightGrid> grid(const torch::Tensor& weight) const override;

 protected:
  torch::Tensor quantize(const torch::Tensor& weight) override { return quantize_(weight, bits()); }

 private:
  ElementwiseQuantization quantize_;
  ElementwiseGrid grid_;
};

class ElementwiseActivationQuantizerImpl : public ActivationQuantizerImpl {
 public:
  /// `full_precision` is the nonlinearity at 32 bits and where SP holds the layer; empty: ReLU.
  ElementwiseActivationQuantizerImpl(
      LayerContext layer, int bits, ElementwiseQuantization quantize,
      std::function<torch::Tensor(const torch::Tensor&)> full_precision = {});

 protected:
  torch::Tensor quantize(const torch::Tensor& input) override { return quantize_(input, bits()); }
  torch::Tensor full_precision(const torch::Tensor& input) override;

 private:
  ElementwiseQuantization quantize_;
  std::function<torch::Tensor(const torch::Tensor&)> full_precision_;
};

/// One configured quantizer of a run: makes the per-layer modules.
class Quantizer {
 public:
  virtual ~Quantizer() = default;
  virtual std::shared_ptr<WeightQuantizerImpl> weight_quantizer(const LayerContext& layer,
                                                                int bits) const = 0;
  virtual std::shared_ptr<ActivationQuantizerImpl> activation_quantizer(const LayerContext& layer,
                                                                        int bits) const = 0;

  /// The bit-widths its layers can take. The experiment skips a matrix point whose precision, or
  /// any stage a strategy plans for it (PP's 8/4/2 bits), is outside them, and says why; a layer
  /// refuses set_bits() outside them.
  virtual BitWidths supported_bits() const { return BitWidths::all(); }

  /// weight_quantizer() / activation_quantizer(), held to supported_bits(): what the harness
  /// calls.
  std::shared_ptr<WeightQuantizerImpl> make_weight_quantizer(const LayerContext& layer,
                                                             int bits) const;
  std::shared_ptr<ActivationQuantizerImpl> make_activation_quantizer(const LayerContext& layer,
                                                                     int bits) const;

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
