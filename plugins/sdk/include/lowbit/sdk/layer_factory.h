#pragma once
// Models are recipes written against this factory, never against concrete layers: the harness's
// factory decides per layer whether and how it is quantized, and plugins may wrap it.

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

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

/// Where an activation sits in the network. Structural transforms decide by it which
/// nonlinearities a binary network drops (Bi-Real and Group-Net have none in stem or head).
enum class NetworkPart {
  stem,  ///< between the first conv and the first residual block
  body,  ///< inside a block, or anywhere in a network without blocks
  head,  ///< after the last block, before pooling and the classifier
};

struct ActivationSpec {
  std::string name;
  std::string fragment;
  int64_t channels = 0;
  LayerRole role = LayerRole::inner;
  NetworkPart part = NetworkPart::body;
};

struct LinearSpec {
  std::string name;
  int64_t in_features = 0;
  int64_t out_features = 0;
  LayerRole role = LayerRole::last;
};

/// The design of a residual block, so that a structural transform can implement it or refuse it.
enum class BlockKind {
  basic,              ///< conv3x3 -> BN -> act -> conv3x3 -> BN, + shortcut, act (He et al. 2016)
  bottleneck,         ///< conv1x1 -> conv3x3 -> conv1x1 (x4 channels), post-activation
  preact_basic,       ///< (BN -> act -> conv3x3) twice, + shortcut ("Identity Mappings")
  preact_bottleneck,  ///< (BN -> act -> conv) for 1x1, 3x3, 1x1, + shortcut
};
/// "basic", "bottleneck", "pre-activation basic", "pre-activation bottleneck".
std::string_view to_string(BlockKind kind);

/// A residual block as a model places it: structural transforms (Bi-Real's one-conv blocks,
/// Group-Net's parallel bases) replace the whole block, keeping its interface.
struct BlockSpec {
  std::string name;  ///< e.g. "layer2.0"; also the fragment of the layers inside it
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t stride = 1;
  /// LayerRole::last when the block's output feeds the classifier.
  LayerRole output_role = LayerRole::inner;
  BlockKind kind = BlockKind::basic;
};

/// The layers of a residual network before its first block: the first conv ("conv1"), and,
/// where the model has them, its BN ("bn1") and activation ("act1"), and a max-pool ("pool").
struct StemSpec {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel = 3;
  int64_t stride = 1;
  /// conv -> BN -> act; false for a stem that is the conv alone (CIFAR pre-activation).
  bool normalized = true;
  /// Followed by a 3x3/2 max-pool with padding 1 (the ImageNet stem).
  bool max_pool = false;
};

class LayerFactory;
/// Builds the model's own block from a factory; a module mapping a tensor to a tensor.
using BlockBuilder = std::function<torch::nn::AnyModule(LayerFactory& layers)>;
/// Builds the model's own stem from a factory. Children are named as StemSpec says: the model
/// registers them under those names, so checkpoints keep the keys of torchvision's ResNets.
using StemBuilder = std::function<torch::nn::Sequential(LayerFactory& layers)>;

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
  /// A residual network's stem; by default the model's own built from this factory.
  virtual torch::nn::Sequential stem(const StemSpec& spec, const StemBuilder& standard) {
    (void)spec;
    return standard(*this);
  }
};

/// Which of the model's nonlinearities a structural transform keeps.
enum class OutsideActivations {
  keep,  ///< every activation the model has
  /// Identity in stem and head: binary networks with real shortcuts (Bi-Real, Group-Net) have
  /// nonlinearities only inside their blocks.
  drop,
};

/// A factory that forwards everything to another one; structural transforms derive from it and
/// override only what they change.
class LayerFactoryDecorator : public LayerFactory {
 public:
  explicit LayerFactoryDecorator(std::shared_ptr<LayerFactory> inner,
                                 OutsideActivations outside = OutsideActivations::keep)
      : inner_(std::move(inner)), outside_(outside) {}
  torch::nn::AnyModule conv2d(const ConvSpec& spec) override { return inner_->conv2d(spec); }
  torch::nn::AnyModule activation(const ActivationSpec& spec) override {
    if (outside_ == OutsideActivations::drop && spec.part != NetworkPart::body) {
      return torch::nn::AnyModule(torch::nn::Identity());
    }
    return inner_->activation(spec);
  }
  torch::nn::AnyModule linear(const LinearSpec& spec) override { return inner_->linear(spec); }
  /// The standard block is built from *this* factory, so overrides of the per-layer calls apply.
  torch::nn::AnyModule residual_block(const BlockSpec& spec,
                                      const BlockBuilder& standard) override {
    (void)spec;
    return standard(*this);
  }
  torch::nn::Sequential stem(const StemSpec& spec, const StemBuilder& standard) override {
    (void)spec;
    return standard(*this);
  }

 protected:
  LayerFactory& inner() { return *inner_; }

 private:
  std::shared_ptr<LayerFactory> inner_;
  OutsideActivations outside_;
};

}  // namespace lowbit
