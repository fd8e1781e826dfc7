#include <lowbit/models/resnet_cifar.h>

#include "layer_specs.h"

#include <fmt/format.h>

namespace lowbit::models {
using detail::add_stem;
using detail::init_weights;
using detail::LayerBuilder;
using detail::needs_projection;

BasicBlockImpl::BasicBlockImpl(LayerFactory& layers, const std::string& name, int64_t in_channels,
                               int64_t out_channels, int64_t stride, LayerRole output_role) {
  LayerBuilder build(*this, layers, name);
  conv1_ = build.conv("conv1", in_channels, out_channels, 3, stride);
  bn1_ = build.batch_norm("bn1", out_channels);
  act1_ = build.activation("act1", out_channels);
  conv2_ = build.conv("conv2", out_channels, out_channels, 3, 1);
  bn2_ = build.batch_norm("bn2", out_channels);
  if (needs_projection(in_channels, out_channels, stride)) {
    shortcut_conv_ = build.conv("shortcut", in_channels, out_channels, 1, stride);
    shortcut_bn_ = build.batch_norm("shortcut_bn", out_channels);
  }
  act2_ = build.activation("act2", out_channels, output_role);
}

torch::Tensor BasicBlockImpl::forward(torch::Tensor x) {
  auto out = act1_.forward(bn1_->forward(conv1_.forward(x)));
  out = bn2_->forward(conv2_.forward(out));
  auto shortcut = shortcut_conv_.is_empty() ? x : shortcut_bn_->forward(shortcut_conv_.forward(x));
  return act2_.forward(out + shortcut);
}

PreActBlockImpl::PreActBlockImpl(LayerFactory& layers, const std::string& name, int64_t in_channels,
                                 int64_t out_channels, int64_t stride) {
  LayerBuilder build(*this, layers, name);
  bn1_ = build.batch_norm("bn1", in_channels);
  act1_ = build.activation("act1", in_channels);
  conv1_ = build.conv("conv1", in_channels, out_channels, 3, stride);
  bn2_ = build.batch_norm("bn2", out_channels);
  act2_ = build.activation("act2", out_channels);
  conv2_ = build.conv("conv2", out_channels, out_channels, 3, 1);
  if (needs_projection(in_channels, out_channels, stride)) {
    shortcut_conv_ = build.conv("shortcut", in_channels, out_channels, 1, stride);
  }
}

torch::Tensor PreActBlockImpl::forward(torch::Tensor x) {
  auto activated = act1_.forward(bn1_->forward(x));
  auto shortcut = shortcut_conv_.is_empty() ? x : shortcut_conv_.forward(activated);
  auto out = conv1_.forward(activated);
  out = conv2_.forward(act2_.forward(bn2_->forward(out)));
  return out + shortcut;
}

CifarResNetImpl::CifarResNetImpl(const CifarResNetOptions& options, LayerFactory& layers)
    : options_(options) {
  TORCH_CHECK(options.depth() >= 8 && (options.depth() - 2) % 6 == 0,
              "CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110), got ", options.depth());
  const int64_t blocks_per_stage = (options.depth() - 2) / 6;
  const std::vector<int64_t> widths{16, 32, 64};
  const auto& data = options.data();
  const bool pre = options.preactivation();

  LayerBuilder build(*this, layers);
  StemSpec stem;
  stem.in_channels = data.in_channels;
  stem.out_channels = widths[0];
  stem.normalized = !pre;
  stem_ = add_stem(*this, layers, stem);

  int64_t in_channels = widths[0];
  for (size_t s = 0; s < widths.size(); ++s) {
    torch::nn::Sequential stage;
    for (int64_t b = 0; b < blocks_per_stage; ++b) {
      const auto name = fmt::format("layer{}.{}", s + 1, b);
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      const bool last_block = s + 1 == widths.size() && b + 1 == blocks_per_stage;
      // The last block's output feeds pooling and the classifier: it keeps full precision.
      const auto role = last_block && !pre ? LayerRole::last : LayerRole::inner;
      const int64_t in = in_channels, out = widths[s];
      // Built through the factory, so structural transforms can replace the whole block.
      const auto kind = pre ? BlockKind::preact_basic : BlockKind::basic;
      stage->push_back(layers.residual_block(
          BlockSpec{name, in, out, stride, role, kind}, [&](LayerFactory& factory) {
            return pre ? torch::nn::AnyModule(PreActBlock(factory, name, in, out, stride))
                       : torch::nn::AnyModule(BasicBlock(factory, name, in, out, stride, role));
          }));
      in_channels = widths[s];
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

NetworkOutput CifarResNetImpl::forward(torch::Tensor images) {
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
