#include <lowbit/sdk/binary.h>

namespace lowbit {

torch::Tensor binary_sign(const torch::Tensor& x, SignZero zero) {
  if (zero == SignZero::zero) return torch::sign(x);
  return torch::where(x >= 0, torch::ones_like(x), -torch::ones_like(x));
}

torch::Tensor approx_sign_slope(const torch::Tensor& x) {
  auto slope = torch::where(x < 0, 2 + 2 * x, 2 - 2 * x);
  return torch::where(x.ge(-1).logical_and(x.lt(1)), slope, torch::zeros_like(x));
}

SignZero read_sign_zero(const JsonReader& options) {
  return options.mapped_choice("sign_zero", SignZero::plus_one,
                               {{"plus_one", SignZero::plus_one}, {"zero", SignZero::zero}});
}

}  // namespace lowbit
