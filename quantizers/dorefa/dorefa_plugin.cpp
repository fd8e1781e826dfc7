// The "dorefa" quantizer plugin: per-layer modules around the math of dorefa.h.
//
// Options (the run's "options" object):
//   "k1_weights": "scaled" (default, sign(w)·mean|w|) | "authors" (unscaled ±1)
//   "k1_gradient": "scaled" (default, E·dL/dw_q as the golden vectors) | "identity" (tensorpack)
//   "detach_max": false (default, gradient through max|tanh(w)|) | true

#include "dorefa.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/quantizer.h>
#include <lowbit/sdk/registry.h>

#include <memory>
#include <utility>

namespace lowbit::dorefa {
namespace {

class DoReFaWeightQuantizerImpl : public WeightQuantizerImpl {
 public:
  DoReFaWeightQuantizerImpl(LayerContext layer, int bits, WeightOptions options)
      : WeightQuantizerImpl(std::move(layer), bits), options_(options) {}

 protected:
  torch::Tensor quantize(const torch::Tensor& weight) override {
    return quantize_weight(weight, bits(), options_);
  }

 private:
  WeightOptions options_;
};

class DoReFaActivationQuantizerImpl : public ActivationQuantizerImpl {
 public:
  using ActivationQuantizerImpl::ActivationQuantizerImpl;

 protected:
  torch::Tensor quantize(const torch::Tensor& input) override {
    return quantize_activation(input, bits());
  }
};

class DoReFaQuantizer : public Quantizer {
 public:
  explicit DoReFaQuantizer(WeightOptions options) : options_(options) {}

  std::shared_ptr<WeightQuantizerImpl> weight_quantizer(const LayerContext& layer,
                                                        int bits) const override {
    return std::make_shared<DoReFaWeightQuantizerImpl>(layer, bits, options_);
  }
  std::shared_ptr<ActivationQuantizerImpl> activation_quantizer(const LayerContext& layer,
                                                                int bits) const override {
    return std::make_shared<DoReFaActivationQuantizerImpl>(layer, bits);
  }

 private:
  WeightOptions options_;
};

std::unique_ptr<Quantizer> make_dorefa(const JsonReader& options) {
  const auto k1 = options.choice("k1_weights", "scaled", {"scaled", "authors"});
  const auto k1_gradient = options.choice("k1_gradient", "scaled", {"scaled", "identity"});
  return std::make_unique<DoReFaQuantizer>(
      WeightOptions()
          .k1_weights(k1 == "authors" ? K1Weights::authors : K1Weights::scaled)
          .detach_max(options.boolean("detach_max", false))
          .k1_identity_gradient(k1_gradient == "identity"));
}

}  // namespace

void register_dorefa(Registry& registry) {
  registry.add_quantizer("dorefa",
                         "DoReFa-Net (Zhou et al. 2016): k-bit tanh/max-normalised weights, k-bit "
                         "clip(0,1) activations, straight-through rounding",
                         make_dorefa);
}

}  // namespace lowbit::dorefa

LOWBIT_PLUGIN("dorefa", lowbit::dorefa::register_dorefa)
