#pragma once
// The interface every model of the zoo implements, and the only one the trainer and strategies see.

#include <lowbit/sdk/quantizer.h>

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
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

/// Builds a model of the zoo through `layers`, which decides how each layer is quantized.
using ModelFactory =
    std::function<std::shared_ptr<NetworkImpl>(const ModelSpec& spec, LayerFactory& layers)>;

/// What a model asks its layer factory for, as far as structural transforms care: known before
/// any weight exists, so that a quantizer can refuse a model when an experiment is read.
struct ModelStructure {
  std::vector<BlockSpec> blocks;  ///< every residual block, in the order the model runs them
  std::vector<StemSpec> stems;    ///< the stem of a residual network (none elsewhere)
  bool has_blocks() const { return !blocks.empty(); }
  bool has_only(BlockKind kind) const;
};

/// Why a structural transform that replaces every residual block cannot build `model`:
/// `without_blocks` when it has none, else the reason `unsupported` gives for its first block it
/// does not define; "" when it can.
std::string refuse_blocks(const ModelStructure& model, const std::string& without_blocks,
                          const std::function<std::string(const BlockSpec&)>& unsupported);

/// Builds `model` through a factory that records blocks and stems and makes no weights (convs
/// and linear layers are placeholders): milliseconds even for ResNet-50. The default shape is
/// ImageNet's, which every model of the zoo accepts.
ModelStructure describe_model(const ModelFactory& model,
                              const ModelSpec& spec = ModelSpec{3, 1000, 224});

/// Every tensor quantizer inside `module`, in registration order.
std::vector<std::shared_ptr<TensorQuantizerImpl>> tensor_quantizers(torch::nn::Module& module);

}  // namespace lowbit
