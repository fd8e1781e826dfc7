#pragma once
// The interface every model of the zoo implements, and the only one the trainer and strategies see.

#include <lowbit/sdk/quantizer.h>

#include <torch/torch.h>

#include <memory>
#include <vector>

namespace lowbit {

struct NetworkOutput {
  torch::Tensor logits;
  /// Output of each stage (group of residual blocks), for attention transfer.
  std::vector<torch::Tensor> stage_features;
};

class NetworkImpl : public torch::nn::Module {
 public:
  virtual NetworkOutput forward(torch::Tensor images) = 0;
};

/// What a model needs to know about the data.
struct ModelSpec {
  int64_t in_channels = 3;
  int64_t num_classes = 10;
  int64_t image_size = 32;
};

/// Every tensor quantizer inside `module`, in registration order.
std::vector<std::shared_ptr<TensorQuantizerImpl>> tensor_quantizers(torch::nn::Module& module);

}  // namespace lowbit
