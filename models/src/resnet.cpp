#include <lowbit/models/resnet.h>

#include "layer_specs.h"

#include <fmt/format.h>

#include <stdexcept>

namespace lowbit::models {
using detail::add_stem;
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
  StemSpec stem;
  stem.in_channels = data.in_channels;
  stem.out_channels = widths[0];
  stem.kernel = imagenet ? 7 : 3;
  stem.stride = imagenet ? 2 : 1;
  stem.normalized = !pre || imagenet;
  stem.max_pool = imagenet;
  stem_ = add_stem(*this, layers, stem);

  int64_t in_channels = widths[0];
  for (size_t s = 0; s < widths.size(); ++s) {
    torch::nn::Sequential stage;
    const int64_t blocks = layout.blocks[s];
    for (int64_t b = 0; b < blocks; ++b) {
      const auto name = fmt::format("layer{}.{}", s + 1, b);
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      const int64_t in = in_channels, width = widths[s], out = width * expansion;
      // The last block's output feeds pooling and the classifier: it keeps full precision.
      const bool last_block = s + 1 == widths.size() && b + 1 == blocks;
      const auto role = last_block && !pre ? LayerRole::last : LayerRole::inner;
      const auto kind = layout.bottleneck
                            ? (pre ? BlockKind::preact_bottleneck : BlockKind::bottleneck)
                            : (pre ? BlockKind::preact_basic : BlockKind::basic);
      // Built through the factory, so structural transforms can replace the whole block.
      stage->push_back(layers.residual_block(
          BlockSpec{name, in, out, stride, role, kind}, [&](LayerFactory& factory) {
            switch (kind) {
              case BlockKind::bottleneck:
                return torch::nn::AnyModule(Bottleneck(factory, name, in, width, stride, role));
              case BlockKind::preact_bottleneck:
                return torch::nn::AnyModule(PreActBottleneck(factory, name, in, width, stride));
              case BlockKind::preact_basic:
                return torch::nn::AnyModule(PreActBlock(factory, name, in, width, stride));
              case BlockKind::basic:
                break;
            }
            return torch::nn::AnyModule(BasicBlock(factory, name, in, width, stride, role));
          }));
      in_channels = out;
    }
    stages_.push_back(register_module(fmt::format("layer{}", s + 1), stage));
  }
  if (pre) {
    tail_bn_ = build.batch_norm("bn_final", in_channels);
    tail_act_ = build.activation("act_final", in_channels, LayerRole::last, NetworkPart::head);
  }
  classifier_ = build.linear("fc", in_channels, data.num_classes, LayerRole::last);
  init_weights(*this);
}

NetworkOutput ResNetImpl::forward(torch::Tensor images) {
  NetworkOutput output;
  auto x = stem_->forward(images);
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
