// The "dorefa" quantizer plugin: per-layer modules around the math of dorefa.h.
//
// Options (the run's "options" object):
//   "k1_weights": "scaled" (default, sign(w)·mean|w|) | "authors" (unscaled ±1)
//   "k1_gradient": "identity" (default, dL/dw = dL/dw_q as DoReFa and tensorpack) | "scaled"
//   (E·dL/dw_q) "detach_max": false (default, gradient through max|tanh(w)|) | true
//   "full_precision_activation": "relu" (default) | "clip" (clip(x, 0, 1), the authors' QReLU
//                                unrounded): activations at 32 bits and where SP holds them
//   "kernels": "fused" (default, one-pass kernels for float32) | "composite" (LibTorch ops)

#include "dorefa.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/quantizer.h>
#include <lowbit/sdk/registry.h>

#include <functional>
#include <memory>
#include <utility>

namespace lowbit::dorefa {
namespace {

class DoReFaQuantizer : public Quantizer {
 public:
  DoReFaQuantizer(WeightOptions weight_options, ActivationOptions activation_options)
      : weight_options_(weight_options), activation_options_(activation_options) {}

  std::shared_ptr<WeightQuantizerImpl> weight_quantizer(const LayerContext& layer,
                                                        int bits) const override {
    const auto options = weight_options_;
    return std::make_shared<ElementwiseWeightQuantizerImpl>(
        layer, bits,
        [options](const torch::Tensor& w, int k) { return quantize_weight(w, k, options); },
        [options](const torch::Tensor& w, int k) { return weight_grid(w, k, options); });
  }
  std::shared_ptr<ActivationQuantizerImpl> activation_quantizer(const LayerContext& layer,
                                                                int bits) const override {
    const auto options = activation_options_;
    std::function<torch::Tensor(const torch::Tensor&)> full_precision;
    if (options.full_precision() == FullPrecisionActivation::clip) full_precision = clip_activation;
    return std::make_shared<ElementwiseActivationQuantizerImpl>(
        layer, bits,
        [options](const torch::Tensor& x, int k) { return quantize_activation(x, k, options); },
        full_precision);
  }

 private:
  WeightOptions weight_options_;
  ActivationOptions activation_options_;
};

std::unique_ptr<Quantizer> make_dorefa(const JsonReader& options) {
  const auto kernels = options.mapped_choice(
      "kernels", Kernels::fused, {{"fused", Kernels::fused}, {"composite", Kernels::composite}});
  return std::make_unique<DoReFaQuantizer>(
      WeightOptions()
          .k1_weights(options.mapped_choice(
              "k1_weights", K1Weights::scaled,
              {{"scaled", K1Weights::scaled}, {"authors", K1Weights::authors}}))
          .detach_max(options.boolean("detach_max", false))
          .k1_gradient(options.mapped_choice(
              "k1_gradient", K1Gradient::identity,
              {{"identity", K1Gradient::identity}, {"scaled", K1Gradient::scaled}}))
          .kernels(kernels),
      ActivationOptions().kernels(kernels).full_precision(options.mapped_choice(
          "full_precision_activation", FullPrecisionActivation::relu,
          {{"relu", FullPrecisionActivation::relu}, {"clip", FullPrecisionActivation::clip}})));
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
