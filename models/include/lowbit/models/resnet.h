#pragma once
// ResNet-18/34/50 (He et al. 2016) and their pre-activation variants (He et al., "Identity
// Mappings"), in torchvision's layout: 64/128/256/512 channels, BasicBlock for 18/34, Bottleneck
// (expansion 4, stride on the 3x3 conv as in torchvision v1.5) for 50, and a 1x1 projection
// shortcut (conv + BN) wherever the shape changes. Known parameter counts for 1000 classes:
// ResNet-18 11,689,512; ResNet-34 21,797,672; ResNet-50 25,557,032.
//
// Stems: "imagenet" is 7x7/2 conv, BN, act, 3x3/2 max-pool; "cifar" is a 3x3/1 conv (+ BN, act)
// without pooling, for 32x32 inputs. Pre-activation networks keep the ImageNet stem's BN-act
// (their first block then starts with its own BN-act), end with BN-act before pooling, and their
// projection shortcuts (no BN) read the block's activated input. The CIFAR pre-activation stem is
// the conv alone, as in the CIFAR PreResNets of resnet_cifar.h.
//
// The stem goes through LayerFactory::stem and every block through LayerFactory::residual_block
// with its BlockKind, so a structural quantizer (Bi-Real, Group-Net) replaces or refuses them.

#include <lowbit/models/resnet_cifar.h>
#include <lowbit/sdk/layer_factory.h>
#include <lowbit/sdk/network.h>

#include <torch/torch.h>

#include <string>
#include <vector>

namespace lowbit::models {

enum class ResNetStem { imagenet, cifar };

struct ResNetOptions {
  ResNetOptions(int64_t depth) : depth_(depth) {}
  /// 18, 34 or 50
  TORCH_ARG(int64_t, depth);
  TORCH_ARG(bool, preactivation) = false;
  TORCH_ARG(ResNetStem, stem) = ResNetStem::imagenet;
  TORCH_ARG(ModelSpec, data) = ModelSpec{};
};

/// Post-activation bottleneck: act(BN(conv1x1(act(BN(conv3x3(act(BN(conv1x1(x))))))) + shortcut).
class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(LayerFactory& layers, const std::string& name, int64_t in_channels, int64_t width,
                 int64_t stride, LayerRole output_role);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::AnyModule conv1_, act1_, conv2_, act2_, conv3_, act3_;
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  torch::nn::AnyModule shortcut_conv_;
  torch::nn::BatchNorm2d shortcut_bn_{nullptr};
};
TORCH_MODULE(Bottleneck);

/// Pre-activation bottleneck: three BN-act-conv units plus a shortcut (projection from the
/// activated input where the shape changes).
class PreActBottleneckImpl : public torch::nn::Module {
 public:
  PreActBottleneckImpl(LayerFactory& layers, const std::string& name, int64_t in_channels,
                       int64_t width, int64_t stride);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  torch::nn::AnyModule act1_, conv1_, act2_, conv2_, act3_, conv3_;
  torch::nn::AnyModule shortcut_conv_;
};
TORCH_MODULE(PreActBottleneck);

class ResNetImpl : public NetworkImpl {
 public:
  ResNetImpl(const ResNetOptions& options, LayerFactory& layers);
  NetworkOutput forward(torch::Tensor images) override;

 private:
  ResNetOptions options_;
  torch::nn::Sequential stem_{nullptr};
  torch::nn::AnyModule tail_act_, classifier_;
  torch::nn::BatchNorm2d tail_bn_{nullptr};
  std::vector<torch::nn::Sequential> stages_;
};

}  // namespace lowbit::models
