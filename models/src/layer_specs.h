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
                                      int64_t channels, LayerRole role = LayerRole::inner,
                                      NetworkPart part = NetworkPart::body) {
  return ActivationSpec{name, fragment, channels, role, part};
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
                                  LayerRole role = LayerRole::inner,
                                  NetworkPart part = NetworkPart::body) {
    return add(key, layers_.activation(activation_spec(name(key), prefix_, channels, role, part)));
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

/// The stem StemSpec describes, in the zoo's order: conv -> BN -> act -> max-pool.
inline torch::nn::Sequential standard_stem(LayerFactory& layers, const StemSpec& spec) {
  torch::nn::Sequential stem;
  stem->push_back("conv1", layers.conv2d(conv_spec("conv1", "", spec.in_channels, spec.out_channels,
                                                   spec.kernel, spec.stride, LayerRole::first)));
  if (spec.normalized) {
    stem->push_back("bn1", torch::nn::BatchNorm2d(spec.out_channels));
    stem->push_back(
        "act1", layers.activation(activation_spec("act1", "", spec.out_channels, LayerRole::inner,
                                                  NetworkPart::stem)));
  }
  if (spec.max_pool) {
    stem->push_back("pool",
                    torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1)));
  }
  return stem;
}

/// The stem through the factory (a structural transform may reorder it), its layers registered
/// on `owner` under their own names ("conv1", "bn1"), as torchvision's ResNets name them.
inline torch::nn::Sequential add_stem(torch::nn::Module& owner, LayerFactory& layers,
                                      const StemSpec& spec) {
  auto stem =
      layers.stem(spec, [&spec](LayerFactory& factory) { return standard_stem(factory, spec); });
  for (const auto& child : stem->named_children())
    owner.register_module(child.key(), child.value());
  return stem;
}

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
