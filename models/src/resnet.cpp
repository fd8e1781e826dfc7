#include <lowbit/models/resnet.h>

#include "layer_specs.h"

#include <fmt/format.h>

#include <stdexcept>

namespace lowbit::models {
using detail::init_weights;
using detail::LayerBuilder;
using detail::needs_projection;

namespace {

struct Layout {
  std::vector<int64_t> blocks;
  bool bottleneck = false;
};

Layout layout_for(int64_t depth) {
  if (depth == 18) return {{2, 2, 2, 2}, false};
  if (depth == 34) return {{3, 4, 6, 3}, false};
  if (depth == 50) return {{3, 4, 6, 3}, true};
  throw std::invalid_argument(fmt::format("ResNet depth must be 18, 34 or 50, got {}", depth));
}

}  // namespace

BottleneckImpl::BottleneckImpl(LayerFactory& layers, const std::string& name, int64_t in_channels,
                               int64_t width, int64_t stride, LayerRole output_role) {
  LayerBuilder build(*this, layers, name);
  const int64_t out_channels = width * kExpansion;
  conv1_ = build.conv("conv1", in_channels, width, 1, 1);
  bn1_ = build.batch_norm("bn1", width);
  act1_ = build.activation("act1", width);
  conv2_ = build.conv("conv2", width, width, 3, stride);
  bn2_ = build.batch_norm("bn2", width);
  act2_ = build.activation("act2", width);
  conv3_ = build.conv("conv3", width, out_channels, 1, 1);
  bn3_ = build.batch_norm("bn3", out_channels);
  if (needs_projection(in_channels, out_channels, stride)) {
    shortcut_conv_ = build.conv("shortcut", in_channels, out_channels, 1, stride);
    shortcut_bn_ = build.batch_norm("shortcut_bn", out_channels);
  }
  act3_ = build.activation("act3", out_channels, output_role);
}

torch::Tensor BottleneckImpl::forward(torch::Tensor x) {
  auto out = act1_.forward(bn1_->forward(conv1_.forward(x)));
  out = act2_.forward(bn2_->forward(conv2_.forward(out)));
  out = bn3_->forward(conv3_.forward(out));
  auto shortcut = shortcut_conv_.is_empty() ? x : shortcut_bn_->forward(shortcut_conv_.forward(x));
  return act3_.forward(out + shortcut);
}

PreActBottleneckImpl::PreActBottleneckImpl(LayerFactory& layers, const std::string& name,
                                           int64_t in_channels, int64_t width, int64_t stride) {
  LayerBuilder build(*this, layers, name);
  const int64_t out_channels = width * BottleneckImpl::kExpansion;
  bn1_ = build.batch_norm("bn1", in_channels);
  act1_ = build.activation("act1", in_channels);
  conv1_ = build.conv("conv1", in_channels, width, 1, 1);
  bn2_ = build.batch_norm("bn2", width);
  act2_ = build.activation("act2", width);
  conv2_ = build.conv("conv2", width, width, 3, stride);
  bn3_ = build.batch_norm("bn3", width);
  act3_ = build.activation("act3", width);
  conv3_ = build.conv("conv3", width, out_channels, 1, 1);
  if (needs_projection(in_channels, out_channels, stride)) {
    shortcut_conv_ = build.conv("shortcut", in_channels, out_channels, 1, stride);
  }
}

torch::Tensor PreActBottleneckImpl::forward(torch::Tensor x) {
  auto activated = act1_.forward(bn1_->forward(x));
  auto shortcut = shortcut_conv_.is_empty() ? x : shortcut_conv_.forward(activated);
  auto out = conv1_.forward(activated);
  out = conv2_.forward(act2_.forward(bn2_->forward(out)));
  out = conv3_.forward(act3_.forward(bn3_->forward(out)));
  return out + shortcut;
}

ResNetImpl::ResNetImpl(const ResNetOptions& options, LayerFactory& layers) : options_(options) {
  const Layout layout = layout_for(options.depth());
  const std::vector<int64_t> widths{64, 128, 256, 512};
  const int64_t expansion = layout.bottleneck ? BottleneckImpl::kExpansion : 1;
  const auto& data = options.data();
  const bool pre = options.preactivation();
  const bool imagenet = options.stem() == ResNetStem::imagenet;

  LayerBuilder build(*this, layers);
  stem_conv_ = imagenet ? build.conv("conv1", data.in_channels, widths[0], 7, 2, LayerRole::first)
                        : build.conv("conv1", data.in_channels, widths[0], 3, 1, LayerRole::first);
  if (!pre || imagenet) {
    stem_bn_ = build.batch_norm("bn1", widths[0]);
    stem_act_ = build.activation("act1", widths[0]);
  }

  int64_t in_channels = widths[0];
  for (size_t s = 0; s < widths.size(); ++s) {
    torch::nn::Sequential stage;
    const int64_t blocks = layout.blocks[s];
    for (int64_t b = 0; b < blocks; ++b) {
      const auto name = fmt::format("layer{}.{}", s + 1, b);
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      // The last block's output feeds pooling and the classifier: it keeps full precision.
      const auto role = s + 1 == widths.size() && b + 1 == blocks ? LayerRole::last
                                                                 : LayerRole::inner;
      if (layout.bottleneck && pre) {
        stage->push_back(PreActBottleneck(layers, name, in_channels, widths[s], stride));
      } else if (layout.bottleneck) {
        stage->push_back(Bottleneck(layers, name, in_channels, widths[s], stride, role));
      } else if (pre) {
        stage->push_back(PreActBlock(layers, name, in_channels, widths[s], stride));
      } else {
        stage->push_back(BasicBlock(layers, name, in_channels, widths[s], stride, role));
      }
      in_channels = widths[s] * expansion;
    }
    stages_.push_back(register_module(fmt::format("layer{}", s + 1), stage));
  }
  if (pre) {
    tail_bn_ = build.batch_norm("bn_final", in_channels);
    tail_act_ = build.activation("act_final", in_channels, LayerRole::last);
  }
  classifier_ = build.linear("fc", in_channels, data.num_classes, LayerRole::last);
  init_weights(*this);
}

NetworkOutput ResNetImpl::forward(torch::Tensor images) {
  NetworkOutput output;
  auto x = stem_conv_.forward(images);
  if (!stem_bn_.is_empty()) x = stem_act_.forward(stem_bn_->forward(x));
  if (options_.stem() == ResNetStem::imagenet) {
    x = torch::max_pool2d(x, /*kernel_size=*/3, /*stride=*/2, /*padding=*/1);
  }
  for (auto& stage : stages_) {
    x = stage->forward(x);
    output.stage_features.push_back(x);
  }
  if (options_.preactivation()) x = tail_act_.forward(tail_bn_->forward(x));
  x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  output.logits = classifier_.forward(x);
  return output;
}

}  // namespace lowbit::models
