#pragma once
// Models are recipes written against this factory, never against concrete layers: the harness's
// factory decides per layer whether and how it is quantized, and plugins may wrap it.

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

namespace lowbit {

/// Position of a layer, which decides the precision policy: the first conv and the last FC (and
/// the activation feeding the classifier) stay full precision unless a run quantizes all layers.
enum class LayerRole { first, inner, last };

struct ConvSpec {
  std::string name;
  std::string fragment;  ///< residual block, "" outside blocks
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel = 3;
  int64_t stride = 1;
  int64_t padding = 0;
  LayerRole role = LayerRole::inner;
};

struct ActivationSpec {
  std::string name;
  std::string fragment;
  int64_t channels = 0;
  LayerRole role = LayerRole::inner;
};

struct LinearSpec {
  std::string name;
  int64_t in_features = 0;
  int64_t out_features = 0;
  LayerRole role = LayerRole::last;
};

/// A residual block as a model places it: structural transforms (Bi-Real's one-conv blocks,
/// Group-Net's parallel bases) replace the whole block, keeping its interface.
struct BlockSpec {
  std::string name;  ///< e.g. "layer2.0"; also the fragment of the layers inside it
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t stride = 1;
  /// LayerRole::last when the block's output feeds the classifier.
  LayerRole output_role = LayerRole::inner;
};

class LayerFactory;
/// Builds the model's own block from a factory; a module mapping a tensor to a tensor.
using BlockBuilder = std::function<torch::nn::AnyModule(LayerFactory& layers)>;

class LayerFactory {
 public:
  virtual ~LayerFactory() = default;
  /// A module mapping a tensor to a tensor.
  virtual torch::nn::AnyModule conv2d(const ConvSpec& spec) = 0;
  virtual torch::nn::AnyModule activation(const ActivationSpec& spec) = 0;
  virtual torch::nn::AnyModule linear(const LinearSpec& spec) = 0;
  /// A residual block; by default the model's own (`standard`) built from this factory.
  virtual torch::nn::AnyModule residual_block(const BlockSpec& spec, const BlockBuilder& standard) {
    (void)spec;
    return standard(*this);
  }
};

/// A factory that forwards everything to another one; structural transforms derive from it and
/// override only what they change.
class LayerFactoryDecorator : public LayerFactory {
 public:
  explicit LayerFactoryDecorator(std::shared_ptr<LayerFactory> inner) : inner_(std::move(inner)) {}
  torch::nn::AnyModule conv2d(const ConvSpec& spec) override { return inner_->conv2d(spec); }
  torch::nn::AnyModule activation(const ActivationSpec& spec) override {
    return inner_->activation(spec);
  }
  torch::nn::AnyModule linear(const LinearSpec& spec) override { return inner_->linear(spec); }
  /// The standard block is built from *this* factory, so overrides of the per-layer calls apply.
  torch::nn::AnyModule residual_block(const BlockSpec& spec, const BlockBuilder& standard) override {
    (void)spec;
    return standard(*this);
  }

 protected:
  LayerFactory& inner() { return *inner_; }

 private:
  std::shared_ptr<LayerFactory> inner_;
};

}  // namespace lowbit
