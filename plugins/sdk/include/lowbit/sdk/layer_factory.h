#pragma once
// Models are recipes written against this factory, never against concrete layers: the harness's
// factory decides per layer whether and how it is quantized, and plugins may wrap it.

#include <torch/torch.h>

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

class LayerFactory {
 public:
  virtual ~LayerFactory() = default;
  /// A module mapping a tensor to a tensor.
  virtual torch::nn::AnyModule conv2d(const ConvSpec& spec) = 0;
  virtual torch::nn::AnyModule activation(const ActivationSpec& spec) = 0;
  virtual torch::nn::AnyModule linear(const LinearSpec& spec) = 0;
};

}  // namespace lowbit
