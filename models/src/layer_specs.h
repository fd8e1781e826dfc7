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
