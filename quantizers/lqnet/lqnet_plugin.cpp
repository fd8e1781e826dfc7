// The "lqnet" quantizer plugin: per-layer modules holding the learned bases as buffers, around the
// math of lqnet.h. The bases are buffers, not parameters: no gradient trains them, QEM does, and
// buffers move with the model and are saved in its checkpoints.
//
// Options (the run's "options" object):
//   "ema": "debiased" (default, TF reference) | "plain" (paper)
//   "momentum": 0.9           moving-average decay, in [0, 1)
//   "ridge": 1e-4             weight-fit ridge toward the old basis
//   "singular": "skip" (default) | "pinv"    a singular activation fit
//
// Matrix points: K = 1..8 or 32 for weights and activations; every strategy (PP restarts a basis
// whenever it changes the layer's K).

#include "lqnet.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/quantizer.h>
#include <lowbit/sdk/registry.h>

#include <fmt/format.h>

#include <memory>
#include <utility>

namespace lowbit::lqnet {
namespace {

int basis_bits(int bits) { return bits < kFullPrecisionBits ? bits : 0; }

/// LQ-Net enumerates all 2^K levels of a basis.
const BitWidths kSupportedBits = BitWidths::up_to(kMaxBits);

/// Before a basis is made: a module made directly (not through Quantizer::make_*) is held too.
void check_supported(const LayerContext& layer, int bits) {
  TORCH_CHECK(kSupportedBits.contains(bits), "lqnet layer ", layer.name, ": supports ",
              kSupportedBits.describe(), " bits, got ", bits);
}

/// What weight and activation modules share: the basis, its moving-average state and QEM options.
class BasisState {
 protected:
  void register_state(torch::nn::Module& module, torch::Tensor basis) {
    basis_ = module.register_buffer("basis", basis);
    biased_ = module.register_buffer("biased", torch::zeros_like(basis));
    steps_ = module.register_buffer("steps", torch::zeros({}, torch::kLong));
  }
  /// Restarts the basis at `basis` (a new K), in place so the registered buffers follow.
  void reset_state(torch::Tensor basis) {
    torch::NoGradGuard no_grad;
    const auto device = basis_.device();
    basis_.set_data(basis.to(device));
    biased_.set_data(torch::zeros_like(basis).to(device));
    steps_.zero_();
  }

  torch::Tensor basis_, biased_, steps_;
};

class LQNetWeightQuantizerImpl : public WeightQuantizerImpl, private BasisState {
 public:
  LQNetWeightQuantizerImpl(LayerContext layer, int bits, QemOptions options)
      : WeightQuantizerImpl(std::move(layer), bits), options_(options) {
    check_supported(context(), bits);
    register_state(*this, initial_basis(bits));
  }

  void set_bits(int bits) override {
    check_supported(context(), bits);
    const bool changed = bits != this->bits();
    WeightQuantizerImpl::set_bits(bits);
    if (changed) reset_state(initial_basis(bits));
  }

  const torch::Tensor& basis() const { return basis_; }

 protected:
  torch::Tensor quantize(const torch::Tensor& weight) override {
    const auto rows = weight.detach().reshape({weight.size(0), -1});
    Encoding encoding;
    {
      torch::NoGradGuard no_grad;
      encoding = encode(rows, basis_, /*signed_codes=*/true);
    }
    auto output = weight_ste(weight, encoding.values.reshape(weight.sizes()));
    if (is_training()) {
      torch::NoGradGuard no_grad;
      auto target = fit_weight_basis(rows, encoding.codes, basis_, options_.ridge());
      moving_average(basis_, biased_, steps_, target, options_);
    }
    return output;
  }

 private:
  torch::Tensor initial_basis(int bits) const {
    const int k = basis_bits(bits);
    if (k == 0) return torch::zeros({0, context().out_channels});
    return initial_weight_basis(k, context().kernel, context().out_channels);
  }

  QemOptions options_;
};

class LQNetActivationQuantizerImpl : public ActivationQuantizerImpl, private BasisState {
 public:
  LQNetActivationQuantizerImpl(LayerContext layer, int bits, QemOptions options)
      : ActivationQuantizerImpl(std::move(layer), bits), options_(options) {
    check_supported(context(), bits);
    register_state(*this, initial_basis(bits));
  }

  void set_bits(int bits) override {
    check_supported(context(), bits);
    const bool changed = bits != this->bits();
    ActivationQuantizerImpl::set_bits(bits);
    if (changed) reset_state(initial_basis(bits));
  }

 protected:
  torch::Tensor quantize(const torch::Tensor& input) override {
    // This module stands where the network's ReLU was: quantize relu(x), as BNReLU -> QA does.
    const auto rectified = torch::relu(input);
    const auto row = rectified.detach().reshape({1, -1});
    Encoding encoding;
    torch::Tensor max_level;
    {
      torch::NoGradGuard no_grad;
      encoding = encode(row, basis_, /*signed_codes=*/false);
      max_level = basis_.clamp_min(0).sum();
    }
    auto output = activation_ste(rectified, encoding.values.reshape(input.sizes()), max_level);
    if (is_training()) {
      torch::NoGradGuard no_grad;
      auto target = fit_activation_basis(row, encoding.codes, options_.singular());
      if (target.defined()) moving_average(basis_, biased_, steps_, target, options_);
    }
    return output;
  }

 private:
  torch::Tensor initial_basis(int bits) const {
    const int k = basis_bits(bits);
    return k == 0 ? torch::zeros({0, 1}) : initial_activation_basis(k);
  }

  QemOptions options_;
};

class LQNetQuantizer : public Quantizer {
 public:
  explicit LQNetQuantizer(QemOptions options) : options_(options) {}

  std::shared_ptr<WeightQuantizerImpl> weight_quantizer(const LayerContext& layer,
                                                        int bits) const override {
    return std::make_shared<LQNetWeightQuantizerImpl>(layer, bits, options_);
  }
  std::shared_ptr<ActivationQuantizerImpl> activation_quantizer(const LayerContext& layer,
                                                                int bits) const override {
    return std::make_shared<LQNetActivationQuantizerImpl>(layer, bits, options_);
  }
  BitWidths supported_bits() const override { return kSupportedBits; }

 private:
  QemOptions options_;
};

std::unique_ptr<Quantizer> make_lqnet(const JsonReader& options) {
  return std::make_unique<LQNetQuantizer>(
      QemOptions()
          .ema(options.mapped_choice("ema", Ema::debiased,
                                     {{"debiased", Ema::debiased}, {"plain", Ema::plain}}))
          .decay(options.number("momentum", 0.9, 0.0, 0.999999))
          .ridge(options.number("ridge", 1e-4, 0.0, 1e6))
          .singular(options.mapped_choice(
              "singular", SingularFit::skip,
              {{"skip", SingularFit::skip}, {"pinv", SingularFit::pseudo_inverse}})));
}

}  // namespace

void register_lqnet(Registry& registry) {
  registry.add_quantizer(
      "lqnet",
      "LQ-Net (Zhang et al. 2018): learned per-channel weight bases and per-layer "
      "activation bases, nearest-level codes, QEM basis fit every training step",
      make_lqnet);
}

}  // namespace lowbit::lqnet

LOWBIT_PLUGIN("lqnet", lowbit::lqnet::register_lqnet)
