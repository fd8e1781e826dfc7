// The "bireal" quantizer plugin: binary activation and weight modules around bireal.h, and the
// Bi-Real structure as a transform of the model's recipe (Quantizer::wrap_layers): every residual
// block the model asks for becomes two Bi-Real units, each a binary 3x3 conv with BN and its own
// real-valued shortcut:
//   unit(x) = BN(BinConv3x3(sign(x))) + shortcut(x)
//   shortcut = x, or AvgPool(stride) -> 1x1 conv (full precision) -> BN where the shape changes
// (the PyTorch reference's downsample, spec §3.4). The transform also drops the model's stem and
// head nonlinearities (NetworkPart::stem / head): Bi-Real has no ReLU, so the ImageNet stem
// becomes conv -> BN -> max-pool as in the reference, a CIFAR stem conv -> BN, and the head pools
// the real running sum.
//
// Models: Bi-Real is defined for post-activation basic blocks (Bi-Real-18/34; ResNet-20 and the
// other CIFAR ResNets have the same blocks). A model with bottleneck or pre-activation blocks, or
// without residual blocks (AlexNet*), is refused by model_incompatibility() with the reason: the
// transform never builds a network the paper does not define. "structure": "none" takes any model.
//
// Options (the run's "options" object):
//   "weight_gradient": "magnitude_aware" (default, paper) | "clipped" (PyTorch) | "identity"
//   (Caffe) "sign_zero": "plus_one" (default) | "zero" (torch.sign, reference parity) "structure":
//   "bireal" (default, the block transform) | "none" (the model's own blocks, with
//                binary layers where it quantizes)
//
// Matrix points: binary only (supported_bits: 1 or 32 bits), so the experiment skips PP's
// 8/4/2-bit stages; TS, SP and KD work (SP holds layers at full precision: clip(-1, 1)
// activations, real weights).

#include "bireal.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/layer_factory.h>
#include <lowbit/sdk/network.h>
#include <lowbit/sdk/quantizer.h>
#include <lowbit/sdk/registry.h>

#include <fmt/format.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>

namespace lowbit::bireal {
namespace {

class BiRealWeightQuantizerImpl : public WeightQuantizerImpl {
 public:
  BiRealWeightQuantizerImpl(LayerContext layer, int bits, WeightGradient gradient, SignZero zero)
      : WeightQuantizerImpl(std::move(layer), bits), gradient_(gradient), zero_(zero) {}
  std::optional<WeightGrid> grid(const torch::Tensor& weight) const override {
    return scaled_sign_grid(weight_scale(weight.detach()), zero_ == SignZero::zero);
  }

 protected:
  torch::Tensor quantize(const torch::Tensor& weight) override {
    return binary_weight(weight, gradient_, zero_);
  }

 private:
  WeightGradient gradient_;
  SignZero zero_;
};

class BiRealActivationQuantizerImpl : public ActivationQuantizerImpl {
 public:
  BiRealActivationQuantizerImpl(LayerContext layer, int bits, SignZero zero)
      : ActivationQuantizerImpl(std::move(layer), bits), zero_(zero) {}

 protected:
  torch::Tensor quantize(const torch::Tensor& input) override {
    return binary_activation(input, zero_);
  }
  /// The paper's real-valued initialisation ends with clip(x, -1, 1).
  torch::Tensor full_precision(const torch::Tensor& input) override {
    return torch::clamp(input, -1.0, 1.0);
  }

 private:
  SignZero zero_;
};

/// Why the Bi-Real transform cannot replace `block`, or "".
std::string unsupported_block(const BlockSpec& block) {
  switch (block.kind) {
    case BlockKind::basic:
      return "";
    case BlockKind::bottleneck:
    case BlockKind::preact_bottleneck:
      return fmt::format(
          "Bi-Real Net is defined for basic blocks (Bi-Real-18/34), and block {} is "
          "a {} block",
          block.name, to_string(block.kind));
    case BlockKind::preact_basic:
      break;
  }
  return fmt::format(
      "Bi-Real Net is defined for post-activation basic blocks (sign, binary conv, "
      "BN, + shortcut, with no BN before the sign or before pooling), and block {} "
      "is a {} block; the post-activation model of the same depth is Bi-Real's "
      "backbone",
      block.name, to_string(block.kind));
}

/// One binary conv with its BN and real shortcut.
class BiRealUnitImpl : public torch::nn::Module {
 public:
  BiRealUnitImpl(LayerFactory& layers, const std::string& name, const std::string& fragment,
                 int64_t in_channels, int64_t out_channels, int64_t stride) {
    ActivationSpec sign{name + ".sign", fragment, in_channels, LayerRole::inner};
    sign_ = layers.activation(sign);
    register_module("sign", sign_.ptr());
    ConvSpec conv;
    conv.name = name + ".conv";
    conv.fragment = fragment;
    conv.in_channels = in_channels;
    conv.out_channels = out_channels;
    conv.kernel = 3;
    conv.stride = stride;
    conv.padding = 1;  // zero padding, as both references (spec §8.12)
    conv_ = layers.conv2d(conv);
    register_module("conv", conv_.ptr());
    bn_ = register_module("bn", torch::nn::BatchNorm2d(out_channels));
    if (stride != 1 || in_channels != out_channels) {
      if (stride != 1) {
        pool_ = register_module(
            "downsample_pool",
            torch::nn::AvgPool2d(torch::nn::AvgPool2dOptions(stride).stride(stride)));
      }
      downsample_conv_ = register_module(
          "downsample_conv",
          torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, out_channels, 1).bias(false)));
      downsample_bn_ = register_module("downsample_bn", torch::nn::BatchNorm2d(out_channels));
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    auto shortcut = x;
    if (downsample_conv_) {
      if (pool_) shortcut = pool_->forward(shortcut);
      shortcut = downsample_bn_->forward(downsample_conv_->forward(shortcut));
    }
    return bn_->forward(conv_.forward(sign_.forward(x))) + shortcut;
  }

 private:
  torch::nn::AnyModule sign_, conv_;
  torch::nn::BatchNorm2d bn_{nullptr}, downsample_bn_{nullptr};
  torch::nn::AvgPool2d pool_{nullptr};
  torch::nn::Conv2d downsample_conv_{nullptr};
};
TORCH_MODULE(BiRealUnit);

/// A basic block's two convs as two Bi-Real units.
class BiRealBlockImpl : public torch::nn::Module {
 public:
  BiRealBlockImpl(LayerFactory& layers, const BlockSpec& spec)
      : first_(layers, spec.name + ".unit1", spec.name, spec.in_channels, spec.out_channels,
               spec.stride),
        second_(layers, spec.name + ".unit2", spec.name, spec.out_channels, spec.out_channels, 1) {
    register_module("unit1", first_);
    register_module("unit2", second_);
  }
  torch::Tensor forward(torch::Tensor x) { return second_->forward(first_->forward(x)); }

 private:
  BiRealUnit first_, second_;
};
TORCH_MODULE(BiRealBlock);

/// Bi-Real has no nonlinearity in its stem or head (stem conv -> BN, head on the real sum).
class BiRealLayerFactory : public LayerFactoryDecorator {
 public:
  explicit BiRealLayerFactory(std::shared_ptr<LayerFactory> inner)
      : LayerFactoryDecorator(std::move(inner), OutsideActivations::drop) {}

  torch::nn::AnyModule residual_block(const BlockSpec& spec, const BlockBuilder&) override {
    const auto reason = unsupported_block(spec);
    if (!reason.empty()) throw std::invalid_argument("bireal: " + reason);
    return torch::nn::AnyModule(BiRealBlock(inner(), spec));
  }
};

struct Options {
  WeightGradient gradient = WeightGradient::magnitude_aware;
  SignZero zero = SignZero::plus_one;
  bool structure = true;
};

class BiRealQuantizer : public Quantizer {
 public:
  explicit BiRealQuantizer(Options options) : options_(options) {}

  std::shared_ptr<WeightQuantizerImpl> weight_quantizer(const LayerContext& layer,
                                                        int bits) const override {
    return std::make_shared<BiRealWeightQuantizerImpl>(layer, bits, options_.gradient,
                                                       options_.zero);
  }
  std::shared_ptr<ActivationQuantizerImpl> activation_quantizer(const LayerContext& layer,
                                                                int bits) const override {
    return std::make_shared<BiRealActivationQuantizerImpl>(layer, bits, options_.zero);
  }
  BitWidths supported_bits() const override { return BitWidths::binary(); }
  std::string model_incompatibility(const ModelStructure& model) const override {
    if (!options_.structure) return "";
    return refuse_blocks(
        model,
        "bireal replaces residual blocks (a real-valued shortcut around every binary conv), and "
        "this model has none; binary layers without them are not Bi-Real Net (\"structure\": "
        "\"none\" trains such a plain binary network)",
        unsupported_block);
  }
  std::shared_ptr<LayerFactory> wrap_layers(std::shared_ptr<LayerFactory> layers) const override {
    if (!options_.structure) return layers;
    return std::make_shared<BiRealLayerFactory>(std::move(layers));
  }

 private:
  Options options_;
};

std::unique_ptr<Quantizer> make_bireal(const JsonReader& reader) {
  Options options;
  options.gradient = reader.mapped_choice("weight_gradient", WeightGradient::magnitude_aware,
                                          {{"magnitude_aware", WeightGradient::magnitude_aware},
                                           {"clipped", WeightGradient::clipped},
                                           {"identity", WeightGradient::identity}});
  options.zero = read_sign_zero(reader);
  options.structure = reader.mapped_choice("structure", true, {{"bireal", true}, {"none", false}});
  return std::make_unique<BiRealQuantizer>(options);
}

}  // namespace

void register_bireal(Registry& registry) {
  registry.add_quantizer(
      "bireal",
      "Bi-Real Net (Liu et al. 2018): sign activations with ApproxSign gradient, "
      "per-channel scaled binary weights, a real shortcut around every binary conv",
      make_bireal);
}

}  // namespace lowbit::bireal

LOWBIT_PLUGIN("bireal", lowbit::bireal::register_bireal)
