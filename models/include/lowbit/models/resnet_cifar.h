#pragma once
// CIFAR-style residual networks (He et al. 2016): three stages of 16/32/64 channels with n blocks
// each, depth 6n+2 (ResNet-20: n=3). Projection (1x1 conv) shortcuts where the shape changes,
// because the paper quantizes that conv too. Stem and blocks are built through the layer factory
// (LayerFactory::stem, LayerFactory::residual_block) so that structural quantizers can replace
// them.

#include <lowbit/sdk/layer_factory.h>
#include <lowbit/sdk/network.h>

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace lowbit::models {

struct CifarResNetOptions {
  CifarResNetOptions(int64_t depth) : depth_(depth) {}
  /// 6n+2: 20, 32, 44, 56, 110
  TORCH_ARG(int64_t, depth);
  /// Pre-activation blocks (BN-act-conv), as in He et al.'s "Identity Mappings" paper.
  TORCH_ARG(bool, preactivation) = false;
  TORCH_ARG(ModelSpec, data) = ModelSpec{};
};

/// Post-activation basic block: act(BN(conv(act(BN(conv(x))))) + shortcut(x)).
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(LayerFactory& layers, const std::string& name, int64_t in_channels,
                 int64_t out_channels, int64_t stride, LayerRole output_role);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::AnyModule conv1_, act1_, conv2_, act2_;
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  torch::nn::AnyModule shortcut_conv_;
  torch::nn::BatchNorm2d shortcut_bn_{nullptr};
};
TORCH_MODULE(BasicBlock);

/// Pre-activation basic block: conv(act(BN(conv(act(BN(x)))))) + shortcut, where a projection
/// shortcut reads the block's (quantized) first activation, as tensorpack's DoReFa ResNet does.
class PreActBlockImpl : public torch::nn::Module {
 public:
  PreActBlockImpl(LayerFactory& layers, const std::string& name, int64_t in_channels,
                  int64_t out_channels, int64_t stride);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  torch::nn::AnyModule act1_, conv1_, act2_, conv2_;
  torch::nn::AnyModule shortcut_conv_;
};
TORCH_MODULE(PreActBlock);

class CifarResNetImpl : public NetworkImpl {
 public:
  CifarResNetImpl(const CifarResNetOptions& options, LayerFactory& layers);
  NetworkOutput forward(torch::Tensor images) override;

 private:
  CifarResNetOptions options_;
  torch::nn::Sequential stem_{nullptr};
  torch::nn::AnyModule tail_act_, classifier_;
  torch::nn::BatchNorm2d tail_bn_{nullptr};
  std::vector<torch::nn::Sequential> stages_;
};

}  // namespace lowbit::models
