#include <lowbit/models/alexnet.h>

#include "layer_specs.h"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join moved here in fmt 11

#include <algorithm>
#include <stdexcept>

namespace lowbit::models {
using detail::conv_spec;
using detail::init_weights;
using detail::LayerBuilder;

/// The geometry of the five convs and three max-pools; their widths come from the options.
struct AlexNetLayout {
  struct Conv {
    int64_t kernel, stride, padding;
    bool pool_after;
  };
  std::vector<Conv> convs;
  int64_t pool_padding;
  int64_t pooled_size;  ///< side of the map the first FC reads
};

namespace {

// Krizhevsky et al. 2012 without the two-GPU grouping.
const AlexNetLayout kImageNet{{
                                  {11, 4, 2, true},
                                  {5, 1, 2, true},
                                  {3, 1, 1, false},
                                  {3, 1, 1, false},
                                  {3, 1, 1, true},
                              },
                              0,
                              6};
// The same depth for 32x32 inputs: conv1 5x5/1 instead of 11x11/4, and padded max-pools, so
// that 32 -> 16 -> 8 -> 4.
const AlexNetLayout kCifar{{
                               {5, 1, 2, true},
                               {5, 1, 2, true},
                               {3, 1, 1, false},
                               {3, 1, 1, false},
                               {3, 1, 1, true},
                           },
                           1,
                           4};

const AlexNetLayout& layout_for(AlexNetInput input) {
  return input == AlexNetInput::cifar ? kCifar : kImageNet;
}

/// Output side of a window `kernel`/`stride` over a padded side, 0 when the window does not fit.
int64_t window_output(int64_t size, int64_t kernel, int64_t stride, int64_t padding) {
  const int64_t padded = size + 2 * padding;
  return padded < kernel ? 0 : (padded - kernel) / stride + 1;
}

/// The side of the last max-pool's output for an input of side `size` (0: too small).
int64_t final_map_size(const AlexNetLayout& layout, int64_t size) {
  for (const auto& conv : layout.convs) {
    size = window_output(size, conv.kernel, conv.stride, conv.padding);
    if (conv.pool_after) size = window_output(size, 3, 2, layout.pool_padding);
  }
  return size;
}

/// The smallest input side the layout can take.
int64_t minimum_input_size(const AlexNetLayout& layout) {
  int64_t size = 1;
  while (final_map_size(layout, size) < 1) ++size;
  return size;
}

}  // namespace

AlexNetBNImpl::AlexNetBNImpl(const AlexNetBNOptions& options, LayerFactory& layers)
    : layout_(&layout_for(options.input())) {
  const auto& widths = options.widths();
  const bool positive =
      std::all_of(widths.begin(), widths.end(), [](int64_t width) { return width >= 1; });
  if (widths.size() != layout_->convs.size() || !positive || options.hidden() < 1) {
    throw std::invalid_argument(fmt::format(
        "AlexNet* needs {} conv widths >= 1 and a hidden width >= 1, got widths [{}] and hidden {}",
        layout_->convs.size(), fmt::join(widths, ", "), options.hidden()));
  }
  const auto& data = options.data();
  if (final_map_size(*layout_, data.image_size) < 1) {
    throw std::invalid_argument(fmt::format(
        "AlexNet* with the {} layout needs images of at least {}x{} pixels, got {}x{}{}",
        options.input() == AlexNetInput::cifar ? "32x32" : "ImageNet", minimum_input_size(*layout_),
        minimum_input_size(*layout_), data.image_size, data.image_size,
        options.input() == AlexNetInput::imagenet ? "; alexnet_bn_cifar is AlexNet* for 32x32"
                                                  : ""));
  }
  const int64_t hidden = options.hidden();
  LayerBuilder build(*this, layers);
  int64_t in_channels = data.in_channels;
  for (size_t i = 0; i < layout_->convs.size(); ++i) {
    const auto& layer = layout_->convs[i];
    const auto name = fmt::format("conv{}", i + 1);
    auto spec = conv_spec(name, "", in_channels, widths[i], layer.kernel, layer.stride,
                          i == 0 ? LayerRole::first : LayerRole::inner);
    spec.padding = layer.padding;
    convs_.push_back(layers.conv2d(spec));
    register_module(name, convs_.back().ptr());
    conv_bns_.push_back(
        register_module(fmt::format("bn{}", i + 1), torch::nn::BatchNorm2d(widths[i])));
    conv_acts_.push_back(build.activation(fmt::format("act{}", i + 1), widths[i]));
    in_channels = widths[i];
  }
  const int64_t features = in_channels * layout_->pooled_size * layout_->pooled_size;
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
  const auto& convs = layout_->convs;
  for (size_t i = 0; i < convs.size(); ++i) {
    x = conv_acts_[i].forward(conv_bns_[i]->forward(convs_[i].forward(x)));
    if (convs[i].pool_after) {
      x = torch::max_pool2d(x, /*kernel_size=*/3, /*stride=*/2, layout_->pool_padding);
      output.stage_features.push_back(x);
    }
  }
  const int64_t pooled = layout_->pooled_size;
  x = torch::adaptive_avg_pool2d(x, {pooled, pooled}).flatten(1);
  x = act6_.forward(bn6_->forward(fc6_.forward(x)));
  x = act7_.forward(bn7_->forward(fc7_.forward(x)));
  output.logits = fc8_.forward(x);
  return output;
}

}  // namespace lowbit::models
