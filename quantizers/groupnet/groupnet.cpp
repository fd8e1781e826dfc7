#include "groupnet.h"

#include <vector>

namespace lowbit::groupnet {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

torch::Tensor sign_of(const torch::Tensor& x, SignZero zero) {
  if (zero == SignZero::zero) return torch::sign(x);
  return torch::where(x >= 0, torch::ones_like(x), -torch::ones_like(x));
}

struct SignFunction : public torch::autograd::Function<SignFunction> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, int64_t gradient,
                               int64_t zero) {
    ctx->save_for_backward({x});
    ctx->saved_data["gradient"] = gradient;
    return sign_of(x, static_cast<SignZero>(zero));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto x = ctx->get_saved_variables()[0];
    const auto& grad = grad_outputs[0];
    const auto gradient = static_cast<ActivationGradient>(ctx->saved_data["gradient"].toInt());
    torch::Tensor result;
    if (gradient == ActivationGradient::clipped) {
      result = grad * x.abs().le(1).to(grad.scalar_type());
    } else {
      auto slope = torch::where(x < 0, 2 + 2 * x, 2 - 2 * x);
      slope = torch::where(x.ge(-1).logical_and(x.lt(1)), slope, torch::zeros_like(x));
      result = grad * slope;
      if (gradient == ActivationGradient::reference) {
        // Q_A's masks miss x == 1 exactly, where the gradient ends up multiplied by itself.
        result = torch::where(x.eq(1), grad * grad, result);
      }
    }
    return {result, torch::Tensor(), torch::Tensor()};
  }
};

struct ScaledSign : public torch::autograd::Function<ScaledSign> {
  static torch::Tensor forward(AutogradContext* /*ctx*/, torch::Tensor w, int64_t scale,
                               int64_t zero) {
    torch::Tensor alpha;
    if (static_cast<WeightScale>(scale) == WeightScale::channel && w.dim() > 1) {
      std::vector<int64_t> dims;
      for (int64_t d = 1; d < w.dim(); ++d) dims.push_back(d);
      alpha = w.abs().mean(dims, /*keepdim=*/true);
    } else {
      alpha = w.abs().mean();
    }
    return sign_of(w, static_cast<SignZero>(zero)) * alpha;
  }
  static variable_list backward(AutogradContext* /*ctx*/, variable_list grad_outputs) {
    return {grad_outputs[0], torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor binary_activation(const torch::Tensor& x, ActivationGradient gradient,
                                SignZero zero) {
  return SignFunction::apply(x, static_cast<int64_t>(gradient), static_cast<int64_t>(zero));
}

torch::Tensor binary_weight(const torch::Tensor& w, WeightScale scale, SignZero zero) {
  return ScaledSign::apply(w, static_cast<int64_t>(scale), static_cast<int64_t>(zero));
}

torch::Tensor soft_gate(const torch::Tensor& base, const torch::Tensor& aggregate,
                        const torch::Tensor& theta) {
  const auto weight = torch::sigmoid(theta);
  return weight * base + (1 - weight) * aggregate;
}

torch::Tensor pad_with_ones(const torch::Tensor& x, int64_t padding) {
  if (padding == 0) return x;
  return torch::constant_pad_nd(x, {padding, padding, padding, padding}, 1.0);
}

}  // namespace lowbit::groupnet
