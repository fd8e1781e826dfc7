#pragma once
// AlexNet* of the paper: AlexNet with batch normalisation and without dropout.

#include <lowbit/sdk/layer_factory.h>
#include <lowbit/sdk/network.h>

#include <torch/torch.h>

#include <vector>

namespace lowbit::models {

/// AlexNet with batch normalisation after every conv and hidden FC and no dropout: the paper's
/// AlexNet*. Single-tower widths of Krizhevsky et al. 2012: conv 96 (11x11/4, pad 2), max-pool
/// 3/2, conv 256 (5x5, pad 2), max-pool, conv 384, 384, 256 (3x3, pad 1), max-pool, adaptive
/// average pool to 6x6 (so other input sizes work), FC 4096, FC 4096, FC classes. Convs have no
/// bias (BN follows); FCs keep theirs. 62,396,104 parameters for 3 channels and 1000 classes
/// (+ (in_channels - 3) * 11616 + (classes - 1000) * 4097 for other shapes).
struct AlexNetBNOptions {
  /// Width of the two hidden FC layers (4096 in AlexNet; smaller for quick tests).
  TORCH_ARG(int64_t, hidden) = 4096;
  TORCH_ARG(ModelSpec, data) = ModelSpec{};
};

/// stage_features: the outputs of the three max-pools.
class AlexNetBNImpl : public NetworkImpl {
 public:
  AlexNetBNImpl(const AlexNetBNOptions& options, LayerFactory& layers);
  NetworkOutput forward(torch::Tensor images) override;

 private:
  std::vector<torch::nn::AnyModule> convs_, conv_acts_;
  std::vector<torch::nn::BatchNorm2d> conv_bns_;
  torch::nn::AnyModule fc6_, act6_, fc7_, act7_, fc8_;
  torch::nn::BatchNorm1d bn6_{nullptr}, bn7_{nullptr};
};

}  // namespace lowbit::models
