#include "lqnet.h"

#include <cmath>

namespace lowbit::lqnet {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// The 75 % quantile of N(0, 1): the reference's scale for initial bases.
constexpr double kQuartile = 0.6745;

void check_bits(int bits) {
  TORCH_CHECK(bits >= 1 && bits <= kMaxBits, "lqnet: a basis has 1..", kMaxBits, " bits, got ",
              bits);
}

struct WeightSTE : public torch::autograd::Function<WeightSTE> {
  static torch::Tensor forward(AutogradContext* /*ctx*/, torch::Tensor /*w*/,
                               torch::Tensor quantized) {
    return quantized;
  }
  static variable_list backward(AutogradContext* /*ctx*/, variable_list grad_outputs) {
    return {grad_outputs[0], torch::Tensor()};
  }
};

struct ActivationSTE : public torch::autograd::Function<ActivationSTE> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, torch::Tensor quantized,
                               torch::Tensor max_level) {
    // The reference's minimum(x, q_max) sends the gradient to x on ties: the mask is x <= q_max.
    ctx->save_for_backward({x <= max_level});
    return quantized;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto inside = ctx->get_saved_variables()[0];
    return {grad_outputs[0] * inside.to(grad_outputs[0].scalar_type()), torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

torch::Tensor code_matrix(int bits, bool signed_codes, const torch::TensorOptions& options) {
  check_bits(bits);
  const auto integers = torch::arange(int64_t{1} << bits, torch::kLong).unsqueeze(1);
  const auto shifts = torch::arange(bits, torch::kLong).unsqueeze(0);
  auto set = torch::bitwise_and(torch::bitwise_right_shift(integers, shifts), 1)
                 .to(options.dtype(torch::kFloat).device(options.device()));
  return signed_codes ? 2 * set - 1 : set;
}

torch::Tensor initial_activation_basis(int bits) {
  check_bits(bits);
  const double base = kQuartile * 2.0 / (std::ldexp(1.0, bits) - 1.0);
  return (base * torch::pow(2.0, torch::arange(bits, torch::kFloat))).unsqueeze(1);
}

torch::Tensor initial_weight_basis(int bits, int64_t kernel, int64_t out_channels) {
  check_bits(bits);
  TORCH_CHECK(kernel >= 1 && out_channels >= 1, "lqnet: bad weight shape (kernel ", kernel,
              ", out_channels ", out_channels, ")");
  // n = k_h k_w C_out: the reference uses the fan-out He std for every layer.
  const double n = static_cast<double>(kernel * kernel * out_channels);
  const double base = kQuartile * std::sqrt(2.0 / n) / std::ldexp(1.0, bits - 1);
  const auto column = base * torch::pow(2.0, torch::arange(bits, torch::kFloat));
  return column.unsqueeze(1).repeat({1, out_channels});
}

Encoding encode(const torch::Tensor& x, const torch::Tensor& basis, bool signed_codes) {
  TORCH_CHECK(x.dim() == 2 && basis.dim() == 2 && basis.size(1) == x.size(0),
              "lqnet encode: x [C, N] needs a basis [K, C]; got ", x.sizes(), " and ",
              basis.sizes());
  const int bits = static_cast<int>(basis.size(0));
  const auto codes = code_matrix(bits, signed_codes, x.options());        // [M, K]
  const auto levels = torch::matmul(basis.t().to(x.dtype()), codes.t());  // [C, M]
  const auto sorted = levels.sort(/*dim=*/1);
  const auto& sorted_levels = std::get<0>(sorted);
  const auto& order = std::get<1>(sorted);
  const int64_t m = sorted_levels.size(1);
  const auto thresholds =
      ((sorted_levels.narrow(1, 0, m - 1) + sorted_levels.narrow(1, 1, m - 1)) / 2).contiguous();
  // right = false counts the thresholds strictly below x: a tie goes to the lower level.
  const auto index = torch::searchsorted(thresholds, x.contiguous(), /*out_int32=*/false,
                                         /*right=*/false);
  Encoding encoding;
  encoding.values = sorted_levels.gather(1, index);
  const auto code_index = order.gather(1, index);
  encoding.codes =
      codes.index_select(0, code_index.flatten()).reshape({x.size(0), x.size(1), bits});
  return encoding;
}

torch::Tensor fit_weight_basis(const torch::Tensor& x, const torch::Tensor& codes,
                               const torch::Tensor& old_basis, double ridge) {
  const auto bt = codes.transpose(1, 2);  // [C, K, N]
  const int64_t bits = codes.size(2);
  const auto eye = torch::eye(bits, x.options()).unsqueeze(0);
  const auto gram = torch::matmul(bt, codes) + ridge * eye;  // [C, K, K]
  const auto rhs = torch::matmul(bt, x.unsqueeze(2)) + ridge * old_basis.t().unsqueeze(2);
  return torch::linalg_solve(gram, rhs).squeeze(2).t().contiguous();  // [K, C]
}

torch::Tensor fit_activation_basis(const torch::Tensor& x, const torch::Tensor& codes,
                                   SingularFit singular) {
  const auto b = codes[0];                                   // [N, K]
  const auto gram = torch::matmul(b.t(), b);                 // [K, K]
  const auto rhs = torch::matmul(b.t(), x[0].unsqueeze(1));  // [K, 1]
  // Integer entries: a non-singular gram matrix has |det| >= 1, so 0.5 separates exactly.
  const bool is_singular = torch::linalg_det(gram.to(torch::kDouble)).abs().item<double>() < 0.5;
  if (!is_singular) return torch::linalg_solve(gram, rhs);
  if (singular == SingularFit::skip) return {};
  return torch::matmul(torch::linalg_pinv(gram), rhs);
}

void moving_average(torch::Tensor& basis, torch::Tensor& biased, torch::Tensor& steps,
                    const torch::Tensor& target, const QemOptions& options) {
  torch::NoGradGuard no_grad;
  const double decay = options.decay();
  steps.add_(1);
  if (options.ema() == Ema::plain) {
    basis.mul_(decay).add_(target, 1.0 - decay);
    return;
  }
  biased.mul_(decay).add_(target, 1.0 - decay);
  const double correction = 1.0 - std::pow(decay, static_cast<double>(steps.item<int64_t>()));
  basis.copy_(biased / correction);
}

torch::Tensor weight_ste(const torch::Tensor& w, const torch::Tensor& quantized) {
  return WeightSTE::apply(w, quantized);
}

torch::Tensor activation_ste(const torch::Tensor& x, const torch::Tensor& quantized,
                             const torch::Tensor& max_level) {
  return ActivationSTE::apply(x, quantized, max_level);
}

}  // namespace lowbit::lqnet
