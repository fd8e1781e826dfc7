#include "groupnet.h"

#include <vector>

namespace lowbit::groupnet {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct SignFunction : public torch::autograd::Function<SignFunction> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, int64_t gradient,
                               int64_t zero) {
    ctx->save_for_backward({x});
    ctx->saved_data["gradient"] = gradient;
    return binary_sign(x, static_cast<SignZero>(zero));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto x = ctx->get_saved_variables()[0];
    const auto& grad = grad_outputs[0];
    const auto gradient = static_cast<ActivationGradient>(ctx->saved_data["gradient"].toInt());
    torch::Tensor result;
    if (gradient == ActivationGradient::clipped) {
      result = grad * x.abs().le(1).to(grad.scalar_type());
    } else {
      result = grad * approx_sign_slope(x);
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
    return binary_sign(w, static_cast<SignZero>(zero)) *
           weight_scale(w, static_cast<WeightScale>(scale));
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

torch::Tensor weight_scale(const torch::Tensor& w, WeightScale scale) {
  if (scale == WeightScale::channel && w.dim() > 1) {
    std::vector<int64_t> dims;
    for (int64_t d = 1; d < w.dim(); ++d) dims.push_back(d);
    return w.abs().mean(dims, /*keepdim=*/true);
  }
  return w.abs().mean();
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
