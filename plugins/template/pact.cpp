// PACT: an example quantizer plugin to copy. Choi et al., "PACT: Parameterized Clipping
// Activation for Quantized Neural Networks", arXiv 1805.06085 (2018).
//
// Activations (k bits) clip at a learned bound alpha, one per layer, then quantize uniformly:
//   y   = clip(x, 0, alpha)                       (the paper's 0.5 (|x| - |x - alpha| + alpha))
//   y_q = round(y (2^k - 1) / alpha) alpha / (2^k - 1)
// with straight-through rounding, so
//   dy_q/dx     = 1 on [0, alpha], 0 elsewhere
//   dy_q/dalpha = 1 for x >= alpha, 0 elsewhere   (the paper's STE gradient, eq. 3-4)
// alpha starts at 10 (the paper's initial value) and is a parameter, so the optimizer trains it and
// the run's weight decay regularises it (the paper's L2 on alpha).
// Weights (k bits) follow DoReFa, as the paper does: 2 Q_k(tanh(w) / (2 max|tanh w|) + 1/2) - 1.
// At 32 bits, or when a strategy holds a layer at full precision, activations are ReLU and
// weights are unchanged.
//
// How a plugin is put together (the same in every plugin):
//   1. the math, as torch::autograd::Function where the backward is custom;
//   2. modules deriving from lowbit::WeightQuantizerImpl / ActivationQuantizerImpl, which
//      implement quantize(); learned state is a parameter or buffer registered in the
//      constructor (devices, checkpoints and optimizers then just work). A stateless
//      element-wise quantizer needs no class: lowbit::ElementwiseWeightQuantizerImpl /
//      ElementwiseActivationQuantizerImpl wrap a function;
//   3. a lowbit::Quantizer making those modules per layer, built by a factory that reads its
//      options through JsonReader (unknown or mistyped options are rejected for you);
//   4. a register function adding it to the registry, and LOWBIT_PLUGIN naming it.
// Its test (test_pact.cpp) reaches it through that entry point (lowbit/sdk/testing/).
//
// Options (the run's "options" object):
//   "alpha_init": 10.0    initial clipping bound, > 0

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/quantizer.h>
#include <lowbit/sdk/registry.h>

#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <optional>

namespace pact {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

double levels(int bits) { return std::ldexp(1.0, bits) - 1.0; }

/// Uniform k-bit quantization of clip(x, 0, alpha), with PACT's gradients for x and alpha.
struct PactFunction : public torch::autograd::Function<PactFunction> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, torch::Tensor alpha,
                               int64_t bits) {
    ctx->save_for_backward({x, alpha});
    const auto clipped = torch::minimum(torch::relu(x), alpha);
    const double n = levels(static_cast<int>(bits));
    // torch::round is half-to-even, like the references' round.
    return torch::round(clipped * n / alpha) * alpha / n;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& alpha = saved[1];
    const auto& grad = grad_outputs[0];
    const auto inside = x.ge(0).logical_and(x.le(alpha)).to(grad.scalar_type());
    const auto above = x.ge(alpha).to(grad.scalar_type());
    // Ties at x == alpha pass to both, as the paper's two masks overlap there.
    return {grad * inside, (grad * above).sum().reshape(alpha.sizes()), torch::Tensor()};
  }
};

/// round(n r) / n with a straight-through gradient.
struct RoundFunction : public torch::autograd::Function<RoundFunction> {
  static torch::Tensor forward(AutogradContext* /*ctx*/, torch::Tensor r, double n) {
    return torch::round(r * n) / n;
  }
  static variable_list backward(AutogradContext* /*ctx*/, variable_list grad_outputs) {
    return {grad_outputs[0], torch::Tensor()};
  }
};

class PactActivationQuantizerImpl : public lowbit::ActivationQuantizerImpl {
 public:
  PactActivationQuantizerImpl(lowbit::LayerContext layer, int bits, double alpha_init)
      : ActivationQuantizerImpl(std::move(layer), bits) {
    alpha_ = register_parameter("alpha", torch::full({1}, alpha_init));
  }

 protected:
  torch::Tensor quantize(const torch::Tensor& input) override {
    return PactFunction::apply(input, alpha_, static_cast<int64_t>(bits()));
  }

 private:
  torch::Tensor alpha_;
};

/// DoReFa's k-bit weights: 2 Q_k(tanh(w) / (2 max|tanh w|) + 1/2) - 1.
torch::Tensor quantize_weight(const torch::Tensor& weight, int bits) {
  const auto t = torch::tanh(weight);
  const auto unit = t / (2 * t.abs().max().clamp_min(1e-12)) + 0.5;
  return 2 * RoundFunction::apply(unit, levels(bits)) - 1;
}

/// The 2^k levels quantize_weight lies on, 2 / (2^k - 1) apart from -1 (for `lowbit export`).
std::optional<lowbit::WeightGrid> weight_grid(const torch::Tensor& /*weight*/, int bits) {
  const auto real = torch::TensorOptions().dtype(torch::kDouble);
  return lowbit::WeightGrid{torch::tensor(2.0 / levels(bits), real), torch::tensor(-1.0, real),
                            static_cast<int64_t>(levels(bits)) + 1};
}

class PactQuantizer : public lowbit::Quantizer {
 public:
  explicit PactQuantizer(double alpha_init) : alpha_init_(alpha_init) {}

  std::shared_ptr<lowbit::WeightQuantizerImpl> weight_quantizer(const lowbit::LayerContext& layer,
                                                                int bits) const override {
    // Stateless and element-wise: the SDK's module around the function is all it takes.
    return std::make_shared<lowbit::ElementwiseWeightQuantizerImpl>(layer, bits, quantize_weight,
                                                                    weight_grid);
  }
  std::shared_ptr<lowbit::ActivationQuantizerImpl> activation_quantizer(
      const lowbit::LayerContext& layer, int bits) const override {
    return std::make_shared<PactActivationQuantizerImpl>(layer, bits, alpha_init_);
  }

 private:
  double alpha_init_;
};

std::unique_ptr<lowbit::Quantizer> make_pact(const lowbit::JsonReader& options) {
  return std::make_unique<PactQuantizer>(options.number("alpha_init", 10.0, 1e-6, 1e6));
}

void register_pact(lowbit::Registry& registry) {
  registry.add_quantizer("pact",
                         "PACT (Choi et al. 2018): learned activation clipping bound, uniform "
                         "k-bit activations, DoReFa weights",
                         make_pact);
}

}  // namespace
}  // namespace pact

LOWBIT_PLUGIN("pact", pact::register_pact)
