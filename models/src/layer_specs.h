#pragma once
// Small helpers shared by the zoo's recipes (private to the models library).

#include <lowbit/sdk/layer_factory.h>

#include <torch/torch.h>

#include <string>

namespace lowbit::models::detail {

/// A conv spec with "same" padding (kernel / 2).
inline ConvSpec conv_spec(const std::string& name, const std::string& fragment, int64_t in,
                          int64_t out, int64_t kernel, int64_t stride,
                          LayerRole role = LayerRole::inner) {
  ConvSpec spec;
  spec.name = name;
  spec.fragment = fragment;
  spec.in_channels = in;
  spec.out_channels = out;
  spec.kernel = kernel;
  spec.stride = stride;
  spec.padding = kernel / 2;
  spec.role = role;
  return spec;
}

inline ActivationSpec activation_spec(const std::string& name, const std::string& fragment,
                                      int64_t channels, LayerRole role = LayerRole::inner) {
  return ActivationSpec{name, fragment, channels, role};
}

/// Makes a module's layers through the factory and registers each under its key. A layer's name
/// is "<prefix>.<key>" ("<key>" without a prefix) and its fragment the prefix: a block's layers
/// name their block as fragment (SP's unit), and checkpoints keep the keys.
class LayerBuilder {
 public:
  LayerBuilder(torch::nn::Module& owner, LayerFactory& layers, std::string prefix = "")
      : owner_(owner), layers_(layers), prefix_(std::move(prefix)) {}

  torch::nn::AnyModule conv(const std::string& key, int64_t in, int64_t out, int64_t kernel,
                            int64_t stride, LayerRole role = LayerRole::inner) {
    return add(key, layers_.conv2d(conv_spec(name(key), prefix_, in, out, kernel, stride, role)));
  }
  torch::nn::AnyModule activation(const std::string& key, int64_t channels,
                                  LayerRole role = LayerRole::inner) {
    return add(key, layers_.activation(activation_spec(name(key), prefix_, channels, role)));
  }
  torch::nn::AnyModule linear(const std::string& key, int64_t in, int64_t out,
                              LayerRole role = LayerRole::inner) {
    return add(key, layers_.linear(LinearSpec{name(key), in, out, role}));
  }
  torch::nn::BatchNorm2d batch_norm(const std::string& key, int64_t channels) {
    return owner_.register_module(key, torch::nn::BatchNorm2d(channels));
  }

 private:
  std::string name(const std::string& key) const {
    return prefix_.empty() ? key : prefix_ + "." + key;
  }
  torch::nn::AnyModule add(const std::string& key, torch::nn::AnyModule layer) {
    owner_.register_module(key, layer.ptr());
    return layer;
  }

  torch::nn::Module& owner_;
  LayerFactory& layers_;
  std::string prefix_;
};

inline bool needs_projection(int64_t in_channels, int64_t out_channels, int64_t stride) {
  return stride != 1 || in_channels != out_channels;
}

/// He initialisation for convolutions, as in the ResNet papers; BN starts as identity.
inline void init_weights(torch::nn::Module& network) {
  for (auto& module : network.modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = module->as<torch::nn::BatchNorm2d>()) {
      torch::nn::init::ones_(bn->weight);
      torch::nn::init::zeros_(bn->bias);
    }
  }
}

}  // namespace lowbit::models::detail
