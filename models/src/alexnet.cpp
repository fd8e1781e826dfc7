#include <lowbit/models/alexnet.h>

#include "layer_specs.h"

#include <fmt/format.h>

namespace lowbit::models {
using detail::LayerBuilder;
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
  LayerBuilder build(*this, layers);
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
    conv_acts_.push_back(build.activation(fmt::format("act{}", i + 1), layer.out_channels));
    in_channels = layer.out_channels;
  }
  const int64_t features = in_channels * kPooledSize * kPooledSize;
  fc6_ = build.linear("fc6", features, hidden);
  bn6_ = register_module("bn6", torch::nn::BatchNorm1d(hidden));
  act6_ = build.activation("act6", hidden);
  fc7_ = build.linear("fc7", hidden, hidden);
  bn7_ = register_module("bn7", torch::nn::BatchNorm1d(hidden));
  // Feeds the classifier: full precision unless the run quantizes all layers.
  act7_ = build.activation("act7", hidden, LayerRole::last);
  fc8_ = build.linear("fc8", hidden, data.num_classes, LayerRole::last);
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
