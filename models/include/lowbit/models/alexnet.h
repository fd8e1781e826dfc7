#pragma once
// AlexNet* of the paper: AlexNet with batch normalisation and without dropout.

#include <lowbit/sdk/layer_factory.h>
#include <lowbit/sdk/network.h>

#include <torch/torch.h>

#include <vector>

namespace lowbit::models {

/// Which input size the layout is made for.
enum class AlexNetInput {
  /// Krizhevsky et al. 2012 (single tower): conv 96 (11x11/4, pad 2), max-pool 3/2, conv 256
  /// (5x5, pad 2), max-pool, conv 384, 384, 256 (3x3, pad 1), max-pool, adaptive average pool to
  /// 6x6; needs inputs of at least 63x63. 62,396,104 parameters for 3 channels and 1000 classes
  /// (+ (in_channels - 3) * 11616 + (classes - 1000) * 4097 for other shapes).
  imagenet,
  /// The same widths, depth and FCs for 32x32 (CIFAR) inputs: conv1 5x5/1 (pad 2) and max-pools
  /// 3/2 with padding 1, so 32 -> 16 -> 8 -> 4, and the first FC reads 256 x 4 x 4 = 4096
  /// features. 37,709,636 parameters for 3 channels and 100 classes (CIFAR-100); 37,336,106
  /// for 1 channel and 10 classes (Fashion-MNIST). At a quarter of the conv widths
  /// (24-64-96-96-64) and 512-wide FCs (the zoo's alexnet_bn_cifar_small): 1,075,228 and
  /// 1,027,858.
  cifar,
};

/// AlexNet with batch normalisation after every conv and hidden FC and no dropout: the paper's
/// AlexNet*. Convs have no bias (BN follows); FCs keep theirs.
struct AlexNetBNOptions {
  /// Output channels of conv1..conv5 (AlexNet: 96-256-384-384-256). Narrower widths keep every
  /// layer, its kind and its place, so the layer factory's first/last-layer rules still apply.
  TORCH_ARG(std::vector<int64_t>, widths) = {96, 256, 384, 384, 256};
  /// Width of the two hidden FC layers (4096 in AlexNet; smaller for quick tests).
  TORCH_ARG(int64_t, hidden) = 4096;
  TORCH_ARG(AlexNetInput, input) = AlexNetInput::imagenet;
  TORCH_ARG(ModelSpec, data) = ModelSpec{};
};

/// stage_features: the outputs of the three max-pools.
struct AlexNetLayout;

class AlexNetBNImpl : public NetworkImpl {
 public:
  /// Throws std::invalid_argument when the images are too small for the layout, or the widths
  /// are not five positive numbers.
  AlexNetBNImpl(const AlexNetBNOptions& options, LayerFactory& layers);
  NetworkOutput forward(torch::Tensor images) override;

 private:
  const AlexNetLayout* layout_;
  std::vector<torch::nn::AnyModule> convs_, conv_acts_;
  std::vector<torch::nn::BatchNorm2d> conv_bns_;
  torch::nn::AnyModule fc6_, act6_, fc7_, act7_, fc8_;
  torch::nn::BatchNorm1d bn6_{nullptr}, bn7_{nullptr};
};

}  // namespace lowbit::models
