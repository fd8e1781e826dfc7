#include "bireal.h"

namespace lowbit::bireal {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct ApproxSign : public torch::autograd::Function<ApproxSign> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, int64_t zero) {
    ctx->save_for_backward({x});
    return binary_sign(x, static_cast<SignZero>(zero));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto x = ctx->get_saved_variables()[0];
    return {grad_outputs[0] * approx_sign_slope(x), torch::Tensor()};
  }
};

struct ScaledSign : public torch::autograd::Function<ScaledSign> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor w, int64_t gradient,
                               int64_t zero) {
    const auto alpha = weight_scale(w);
    ctx->save_for_backward({w, alpha});
    ctx->saved_data["gradient"] = gradient;
    return alpha * binary_sign(w, static_cast<SignZero>(zero));
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
};

}  // namespace

torch::Tensor weight_scale(const torch::Tensor& w) {
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < w.dim(); ++d) dims.push_back(d);
  return dims.empty() ? w.abs() : w.abs().mean(dims, /*keepdim=*/true);
}

torch::Tensor binary_activation(const torch::Tensor& x, SignZero zero) {
  return ApproxSign::apply(x, static_cast<int64_t>(zero));
}

torch::Tensor binary_weight(const torch::Tensor& w, WeightGradient gradient, SignZero zero) {
  TORCH_CHECK(w.dim() >= 1, "bireal: a weight needs an output-channel axis");
  return ScaledSign::apply(w, static_cast<int64_t>(gradient), static_cast<int64_t>(zero));
}

}  // namespace lowbit::bireal
