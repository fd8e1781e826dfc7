#include "bireal.h"

namespace lowbit::bireal {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

torch::Tensor sign_of(const torch::Tensor& x, SignZero zero) {
  if (zero == SignZero::zero) return torch::sign(x);
  return torch::where(x >= 0, torch::ones_like(x), -torch::ones_like(x));
}

struct ApproxSign : public torch::autograd::Function<ApproxSign> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, int64_t zero) {
    ctx->save_for_backward({x});
    return sign_of(x, static_cast<SignZero>(zero));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto x = ctx->get_saved_variables()[0];
    // The derivative of the piecewise polynomial: 2 + 2x on [-1, 0), 2 - 2x on [0, 1).
    auto slope = torch::where(x < 0, 2 + 2 * x, 2 - 2 * x);
    slope = torch::where(x.ge(-1).logical_and(x.lt(1)), slope, torch::zeros_like(x));
    return {grad_outputs[0] * slope, torch::Tensor()};
  }
};

struct ScaledSign : public torch::autograd::Function<ScaledSign> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor w, int64_t gradient,
                               int64_t zero) {
    const auto dims = reduce_dims(w);
    const auto alpha = dims.empty() ? w.abs() : w.abs().mean(dims, /*keepdim=*/true);
    ctx->save_for_backward({w, alpha});
    ctx->saved_data["gradient"] = gradient;
    return alpha * sign_of(w, static_cast<SignZero>(zero));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& w = saved[0];
    const auto& alpha = saved[1];
    const auto& grad = grad_outputs[0];
    switch (static_cast<WeightGradient>(ctx->saved_data["gradient"].toInt())) {
      case WeightGradient::magnitude_aware:
        return {grad * alpha * w.abs().lt(1).to(grad.scalar_type()), torch::Tensor(),
                torch::Tensor()};
      case WeightGradient::clipped:
        return {grad * w.abs().le(1).to(grad.scalar_type()), torch::Tensor(), torch::Tensor()};
      case WeightGradient::identity:
        break;
    }
    return {grad, torch::Tensor(), torch::Tensor()};
  }

  static std::vector<int64_t> reduce_dims(const torch::Tensor& w) {
    std::vector<int64_t> dims;
    for (int64_t d = 1; d < w.dim(); ++d) dims.push_back(d);
    return dims;
  }
};

}  // namespace

torch::Tensor binary_activation(const torch::Tensor& x, SignZero zero) {
  return ApproxSign::apply(x, static_cast<int64_t>(zero));
}

torch::Tensor binary_weight(const torch::Tensor& w, WeightGradient gradient, SignZero zero) {
  TORCH_CHECK(w.dim() >= 1, "bireal: a weight needs an output-channel axis");
  return ScaledSign::apply(w, static_cast<int64_t>(gradient), static_cast<int64_t>(zero));
}

}  // namespace lowbit::bireal
