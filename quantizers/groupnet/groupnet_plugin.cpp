// The "groupnet" quantizer plugin: binary modules around groupnet.h, and Group-Net's structure as a
// transform of the model's recipe (Quantizer::wrap_layers): every residual block the model asks
// for becomes K parallel binary bases (spec §4.4; by default the variant of model_ablation_2.py:
// no soft gates, learned scales):
//   a = sign(x);  R = x, or BN_d(BinConv1x1/stride(a)) where the shape changes (shared by all
//   bases) base k:  o1 = BN1k(ReLU(BinConv1k(pad1(a)))) + R;  o2 =
//   BN2k(ReLU(BinConv2k(pad1(sign(o1))))) + o1 Y = sum_k lambda_k o2_k,  lambda_k ~ U[0, 1) learned
//   ("aggregation": "scales") Y = (1/K) sum_k o2_k ("aggregation": "mean")
// pad1 pads with the constant +1. The stem is the reference's conv -> max-pool -> BN with no ReLU
// (the zoo's own is conv -> BN -> act -> max-pool), a CIFAR stem conv -> BN, and the head pools
// the real sum (the model's stem and head nonlinearities are dropped).
// Without gates the shared downsample is computed once per step (the reference recomputes it per
// base, which gives the same output but updates the shared BN's running statistics K times).
//
// Soft gates ("gates": true; model_ablation_1.py with "scales", model.py with "mean"): base k of
// block b reads x_k = sigmoid(theta_b) o2_k^(b-1) + (1 - sigmoid(theta_b)) Y_(b-1), with one
// learned theta_b ~ U[0, 1) per block; the network's first block has no gate. Each base then has
// its own sign(x_k) and shortcut (R = x_k, or the shared downsample on sign(x_k), whose BN then
// sees K batches per step as in the reference). The factory builds blocks in the order they run
// and links each to the one before; a block hands its per-base outputs to the next block once per
// forward pass (the tensor-to-tensor block interface carries only Y).
//
// Models: bases are defined for post-activation basic blocks (ResNet-18/34, the CIFAR ResNets).
// ResNet-50 is refused: the paper reports it, but neither the paper nor the released code defines
// a bottleneck base (its 1x1 convs change the width, so the real shortcut around each binary conv
// that a base is built from has no defined form), and we do not invent one. Pre-activation blocks
// and models without residual blocks (AlexNet*) are refused too; "structure": "none" takes any.
//
// Options (the run's "options" object):
//   "bases": 5                  K, 1..16
//   "gates": false (default, model_ablation_2) | true (soft connections between blocks)
//   "aggregation": "scales" (default) | "mean"
//   "activation_gradient": "approx_sign" (default, code) | "reference" (code incl. the x == 1
//                          quirk) | "clipped" (paper text)
//   "weight_scale": "tensor" (default, code) | "channel"
//   "sign_zero": "plus_one" (default) | "zero" (torch.sign)
//   "structure": "groupnet" (default, the block transform) | "none" (the model's own blocks)
//
// Matrix points: binary only (supported_bits: 1 or 32 bits), so the experiment skips PP's
// 8/4/2-bit stages.

#include "groupnet.h"

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

namespace lowbit::groupnet {

enum class Aggregation { scales, mean };

struct Options {
  int64_t bases = 5;
  Aggregation aggregation = Aggregation::scales;
  ActivationGradient gradient = ActivationGradient::approx_sign;
  WeightScale scale = WeightScale::tensor;
  SignZero zero = SignZero::plus_one;
  bool structure = true;
  bool gates = false;
};

namespace {

class GroupNetWeightQuantizerImpl : public WeightQuantizerImpl {
 public:
  GroupNetWeightQuantizerImpl(LayerContext layer, int bits, Options options)
      : WeightQuantizerImpl(std::move(layer), bits), options_(options) {}
  std::optional<WeightGrid> grid(const torch::Tensor& weight) const override {
    return scaled_sign_grid(weight_scale(weight.detach(), options_.scale),
                            options_.zero == SignZero::zero);
  }

 protected:
  torch::Tensor quantize(const torch::Tensor& weight) override {
    return binary_weight(weight, options_.scale, options_.zero);
  }

 private:
  Options options_;
};

class GroupNetActivationQuantizerImpl : public ActivationQuantizerImpl {
 public:
  GroupNetActivationQuantizerImpl(LayerContext layer, int bits, Options options)
      : ActivationQuantizerImpl(std::move(layer), bits), options_(options) {}

 protected:
  torch::Tensor quantize(const torch::Tensor& input) override {
    return binary_activation(input, options_.gradient, options_.zero);
  }
  /// The reference pretrains the full-precision network with Tanh in place of sign.
  torch::Tensor full_precision(const torch::Tensor& input) override { return torch::tanh(input); }

 private:
  Options options_;
};

ConvSpec binary_conv(const std::string& name, const std::string& fragment, int64_t in, int64_t out,
                     int64_t kernel, int64_t stride) {
  ConvSpec spec;
  spec.name = name;
  spec.fragment = fragment;
  spec.in_channels = in;
  spec.out_channels = out;
  spec.kernel = kernel;
  spec.stride = stride;
  spec.padding = 0;  // the input is padded with +1 before the conv
  return spec;
}

/// Why the Group-Net transform cannot replace `block`, or "".
std::string unsupported_block(const BlockSpec& block) {
  switch (block.kind) {
    case BlockKind::basic:
      return "";
    case BlockKind::bottleneck:
    case BlockKind::preact_bottleneck:
      return fmt::format(
          "Group-Net's bases are defined for basic blocks, and block {} is a {} "
          "block: neither the paper nor the released code defines a bottleneck base "
          "(its 1x1 convs change the width, so there is no real-valued shortcut "
          "around each binary conv)",
          block.name, to_string(block.kind));
    case BlockKind::preact_basic:
      break;
  }
  return fmt::format(
      "Group-Net's bases are defined for post-activation basic blocks (binary conv, "
      "ReLU, BN, + shortcut), and block {} is a {} block; the post-activation model "
      "of the same depth is Group-Net's backbone",
      block.name, to_string(block.kind));
}

}  // namespace

/// One base: a Bi-Real-like double block with conv -> ReLU -> BN -> add.
class GroupNetBaseImpl : public torch::nn::Module {
 public:
  GroupNetBaseImpl(LayerFactory& layers, const std::string& name, const std::string& fragment,
                   int64_t in_channels, int64_t out_channels, int64_t stride) {
    conv1_ =
        layers.conv2d(binary_conv(name + ".conv1", fragment, in_channels, out_channels, 3, stride));
    register_module("conv1", conv1_.ptr());
    bn1_ = register_module("bn1", torch::nn::BatchNorm2d(out_channels));
    sign2_ = layers.activation(ActivationSpec{name + ".sign2", fragment, out_channels});
    register_module("sign2", sign2_.ptr());
    conv2_ =
        layers.conv2d(binary_conv(name + ".conv2", fragment, out_channels, out_channels, 3, 1));
    register_module("conv2", conv2_.ptr());
    bn2_ = register_module("bn2", torch::nn::BatchNorm2d(out_channels));
  }

  /// `binary_input` is sign(x) of the base input, `shortcut` the real shortcut R.
  torch::Tensor forward(const torch::Tensor& binary_input, const torch::Tensor& shortcut) {
    auto first =
        bn1_->forward(torch::relu(conv1_.forward(pad_with_ones(binary_input, 1)))) + shortcut;
    auto second =
        bn2_->forward(torch::relu(conv2_.forward(pad_with_ones(sign2_.forward(first), 1))));
    return second + first;
  }

 private:
  torch::nn::AnyModule conv1_, sign2_, conv2_;
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
};
TORCH_MODULE(GroupNetBase);

/// K bases in parallel, aggregated. With soft gates, base k reads a mix of base k of the block
/// before and that block's aggregate (`previous`, set by the factory that builds them in order).
class GroupNetBlockImpl : public torch::nn::Module {
 public:
  GroupNetBlockImpl(LayerFactory& layers, const BlockSpec& spec, const Options& options,
                    GroupNetBlockImpl* previous)
      : previous_(options.gates ? previous : nullptr) {
    const auto& name = spec.name;
    sign_ = layers.activation(ActivationSpec{name + ".sign", name, spec.in_channels});
    register_module("sign", sign_.ptr());
    if (spec.stride != 1 || spec.in_channels != spec.out_channels) {
      downsample_conv_ = layers.conv2d(binary_conv(name + ".downsample", name, spec.in_channels,
                                                   spec.out_channels, 1, spec.stride));
      register_module("downsample", downsample_conv_.ptr());
      downsample_bn_ = register_module("downsample_bn", torch::nn::BatchNorm2d(spec.out_channels));
    }
    for (int64_t k = 0; k < options.bases; ++k) {
      bases_.push_back(
          register_module(fmt::format("base{}", k),
                          GroupNetBase(layers, fmt::format("{}.base{}", name, k), name,
                                       spec.in_channels, spec.out_channels, spec.stride)));
    }
    if (options.aggregation == Aggregation::scales) {
      scales_ = register_parameter("scales", torch::rand({options.bases}));
    }
    if (previous_ != nullptr) {
      gate_ = register_parameter("gate", torch::rand({1}));
      previous_->keeps_base_outputs_ = true;
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    std::vector<torch::Tensor> inputs(bases_.size(), x);
    if (previous_ != nullptr) {
      // Handed over once: the block before keeps them only until this block has read them.
      auto previous_outputs = std::move(previous_->base_outputs_);
      previous_->base_outputs_.clear();
      TORCH_CHECK(previous_outputs.size() == bases_.size(),
                  "groupnet: a gated block runs right after the block before it");
      for (size_t k = 0; k < bases_.size(); ++k)
        inputs[k] = soft_gate(previous_outputs[k], x, gate_);
    }
    torch::Tensor shared_binary, shared_shortcut;
    if (previous_ == nullptr) {
      shared_binary = sign_.forward(x);
      shared_shortcut = shortcut(x, shared_binary);
    }
    std::vector<torch::Tensor> outputs;
    torch::Tensor sum;
    for (size_t k = 0; k < bases_.size(); ++k) {
      torch::Tensor out;
      if (previous_ == nullptr) {
        out = bases_[k]->forward(shared_binary, shared_shortcut);
      } else {
        const auto binary = sign_.forward(inputs[k]);
        out = bases_[k]->forward(binary, shortcut(inputs[k], binary));
      }
      if (keeps_base_outputs_) outputs.push_back(out);
      if (scales_.defined()) out = out * scales_[static_cast<int64_t>(k)];
      sum = sum.defined() ? sum + out : out;
    }
    base_outputs_ = std::move(outputs);
    return scales_.defined() ? sum : sum / static_cast<double>(bases_.size());
  }

 private:
  torch::Tensor shortcut(const torch::Tensor& x, const torch::Tensor& binary) {
    return downsample_conv_.is_empty() ? x
                                       : downsample_bn_->forward(downsample_conv_.forward(binary));
  }

  GroupNetBlockImpl* previous_;
  bool keeps_base_outputs_ = false;
  std::vector<torch::Tensor> base_outputs_;
  torch::nn::AnyModule sign_, downsample_conv_;
  torch::nn::BatchNorm2d downsample_bn_{nullptr};
  std::vector<GroupNetBase> bases_;
  torch::Tensor scales_, gate_;
};
TORCH_MODULE(GroupNetBlock);

namespace {

class GroupNetLayerFactory : public LayerFactoryDecorator {
 public:
  /// Group-Net has no nonlinearity in its stem or head (the head pools the real sum).
  GroupNetLayerFactory(std::shared_ptr<LayerFactory> inner, Options options)
      : LayerFactoryDecorator(std::move(inner), OutsideActivations::drop), options_(options) {}

  torch::nn::AnyModule residual_block(const BlockSpec& spec, const BlockBuilder&) override {
    const auto reason = unsupported_block(spec);
    if (!reason.empty()) throw std::invalid_argument("groupnet: " + reason);
    // Blocks are made in the order they run, so the last one made is the one before.
    GroupNetBlock block(inner(), spec, options_, previous_.get());
    previous_ = block.ptr();
    return torch::nn::AnyModule(block);
  }
  /// The reference's order, conv -> max-pool -> BN: BN normalises the pooled map.
  torch::nn::Sequential stem(const StemSpec& spec, const StemBuilder&) override {
    ConvSpec conv;
    conv.name = "conv1";
    conv.in_channels = spec.in_channels;
    conv.out_channels = spec.out_channels;
    conv.kernel = spec.kernel;
    conv.stride = spec.stride;
    conv.padding = spec.kernel / 2;
    conv.role = LayerRole::first;
    torch::nn::Sequential stem;
    stem->push_back("conv1", inner().conv2d(conv));
    if (spec.max_pool) {
      stem->push_back("pool",
                      torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1)));
    }
    if (spec.normalized) stem->push_back("bn1", torch::nn::BatchNorm2d(spec.out_channels));
    return stem;
  }

 private:
  Options options_;
  std::shared_ptr<GroupNetBlockImpl> previous_;
};

class GroupNetQuantizer : public Quantizer {
 public:
  explicit GroupNetQuantizer(Options options) : options_(options) {}

  std::shared_ptr<WeightQuantizerImpl> weight_quantizer(const LayerContext& layer,
                                                        int bits) const override {
    return std::make_shared<GroupNetWeightQuantizerImpl>(layer, bits, options_);
  }
  std::shared_ptr<ActivationQuantizerImpl> activation_quantizer(const LayerContext& layer,
                                                                int bits) const override {
    return std::make_shared<GroupNetActivationQuantizerImpl>(layer, bits, options_);
  }
  BitWidths supported_bits() const override { return BitWidths::binary(); }
  std::string model_incompatibility(const ModelStructure& model) const override {
    if (!options_.structure) return "";
    return refuse_blocks(model,
                         "groupnet replaces residual blocks by K binary bases, and this model has "
                         "none; binary layers without them are not Group-Net (\"structure\": "
                         "\"none\" trains such a plain binary network)",
                         unsupported_block);
  }
  std::shared_ptr<LayerFactory> wrap_layers(std::shared_ptr<LayerFactory> layers) const override {
    if (!options_.structure) return layers;
    return std::make_shared<GroupNetLayerFactory>(std::move(layers), options_);
  }

 private:
  Options options_;
};

std::unique_ptr<Quantizer> make_groupnet(const JsonReader& reader) {
  Options options;
  options.bases = reader.integer("bases", 5, 1, 16);
  options.gates = reader.boolean("gates", false);
  options.aggregation =
      reader.mapped_choice("aggregation", Aggregation::scales,
                           {{"scales", Aggregation::scales}, {"mean", Aggregation::mean}});
  options.gradient = reader.mapped_choice("activation_gradient", ActivationGradient::approx_sign,
                                          {{"approx_sign", ActivationGradient::approx_sign},
                                           {"reference", ActivationGradient::reference},
                                           {"clipped", ActivationGradient::clipped}});
  options.scale =
      reader.mapped_choice("weight_scale", WeightScale::tensor,
                           {{"tensor", WeightScale::tensor}, {"channel", WeightScale::channel}});
  options.zero = read_sign_zero(reader);
  options.structure =
      reader.mapped_choice("structure", true, {{"groupnet", true}, {"none", false}});
  return std::make_unique<GroupNetQuantizer>(options);
}

}  // namespace

void register_groupnet(Registry& registry) {
  registry.add_quantizer("groupnet",
                         "Group-Net (Zhuang et al. 2019): each block as K parallel binary bases "
                         "with learned scales, +1-padded binary convs, ApproxSign gradient",
                         make_groupnet);
}

}  // namespace lowbit::groupnet

LOWBIT_PLUGIN("groupnet", lowbit::groupnet::register_groupnet)
