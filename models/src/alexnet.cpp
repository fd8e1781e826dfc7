#include <lowbit/models/alexnet.h>

#include "layer_specs.h"

#include <fmt/format.h>

namespace lowbit::models {
using detail::activation_spec;
using detail::conv_spec;
using detail::init_weights;

namespace {

struct ConvLayer {
  int64_t out_channels, kernel, stride, padding;
  bool pool_after;
};

// Krizhevsky et al. 2012 without the two-GPU grouping.
const std::vector<ConvLayer> kConvs{{96, 11, 4, 2, true},
                                    {256, 5, 1, 2, true},
                                    {384, 3, 1, 1, false},
                                    {384, 3, 1, 1, false},
                                    {256, 3, 1, 1, true}};
constexpr int64_t kPooledSize = 6;

}  // namespace

AlexNetBNImpl::AlexNetBNImpl(const AlexNetBNOptions& options, LayerFactory& layers) {
  const auto& data = options.data();
  const int64_t hidden = options.hidden();
  int64_t in_channels = data.in_channels;
  for (size_t i = 0; i < kConvs.size(); ++i) {
    const auto& layer = kConvs[i];
    const auto name = fmt::format("conv{}", i + 1);
    auto spec = conv_spec(name, "", in_channels, layer.out_channels, layer.kernel, layer.stride,
                          i == 0 ? LayerRole::first : LayerRole::inner);
    spec.padding = layer.padding;
    convs_.push_back(layers.conv2d(spec));
    register_module(name, convs_.back().ptr());
    conv_bns_.push_back(
        register_module(fmt::format("bn{}", i + 1), torch::nn::BatchNorm2d(layer.out_channels)));
    conv_acts_.push_back(layers.activation(
        activation_spec(fmt::format("act{}", i + 1), "", layer.out_channels)));
    register_module(fmt::format("act{}", i + 1), conv_acts_.back().ptr());
    in_channels = layer.out_channels;
  }
  const int64_t features = in_channels * kPooledSize * kPooledSize;
  fc6_ = layers.linear(LinearSpec{"fc6", features, hidden, LayerRole::inner});
  register_module("fc6", fc6_.ptr());
  bn6_ = register_module("bn6", torch::nn::BatchNorm1d(hidden));
  act6_ = layers.activation(activation_spec("act6", "", hidden));
  register_module("act6", act6_.ptr());
  fc7_ = layers.linear(LinearSpec{"fc7", hidden, hidden, LayerRole::inner});
  register_module("fc7", fc7_.ptr());
  bn7_ = register_module("bn7", torch::nn::BatchNorm1d(hidden));
  // Feeds the classifier: full precision unless the run quantizes all layers.
  act7_ = layers.activation(activation_spec("act7", "", hidden, LayerRole::last));
  register_module("act7", act7_.ptr());
  fc8_ = layers.linear(LinearSpec{"fc8", hidden, data.num_classes, LayerRole::last});
  register_module("fc8", fc8_.ptr());
  init_weights(*this);
}

NetworkOutput AlexNetBNImpl::forward(torch::Tensor images) {
  NetworkOutput output;
  auto x = images;
  for (size_t i = 0; i < kConvs.size(); ++i) {
    x = conv_acts_[i].forward(conv_bns_[i]->forward(convs_[i].forward(x)));
    if (kConvs[i].pool_after) {
      x = torch::max_pool2d(x, /*kernel_size=*/3, /*stride=*/2);
      output.stage_features.push_back(x);
    }
  }
  x = torch::adaptive_avg_pool2d(x, {kPooledSize, kPooledSize}).flatten(1);
  x = act6_.forward(bn6_->forward(fc6_.forward(x)));
  x = act7_.forward(bn7_->forward(fc7_.forward(x)));
  output.logits = fc8_.forward(x);
  return output;
}

}  // namespace lowbit::models
