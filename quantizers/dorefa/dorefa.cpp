#include "dorefa.h"

#include "fused_kernels.h"

#include <lowbit/sdk/quantizer.h>

#include <cmath>

namespace lowbit::dorefa {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The floor under max|tanh(w)|: it only matters for an all-zero tensor, which would otherwise give
// 0/0 = NaN; it is far below any real max|tanh(w)|, where it leaves value and gradient unchanged.
constexpr double kMaxFloor = 1e-12;

void check_bits(int bits, const char* what) {
  TORCH_CHECK(bits >= 1 && bits <= kFullPrecisionBits, "dorefa ", what, ": bit-width must be 1..",
              kFullPrecisionBits, ", got ", bits);
}

/// round(n x) / n forward, identity backward.
struct RoundSTE : public torch::autograd::Function<RoundSTE> {
  static torch::Tensor forward(AutogradContext* /*ctx*/, torch::Tensor x, double levels) {
    // Multiply then divide (not multiply by 1/n) to reproduce the reference's float32 results
    // bit for bit, which decides the bin of values lying on a rounding boundary.
    return torch::round(x * levels) / levels;
  }
  static variable_list backward(AutogradContext* /*ctx*/, variable_list grad_outputs) {
    return {grad_outputs[0], torch::Tensor()};
  }
};

/// +1 for x >= 0 (including -0), -1 otherwise; identity backward.
struct SignSTE : public torch::autograd::Function<SignSTE> {
  static torch::Tensor forward(AutogradContext* /*ctx*/, torch::Tensor x) {
    return torch::where(x >= 0, torch::ones_like(x), -torch::ones_like(x));
  }
  static variable_list backward(AutogradContext* /*ctx*/, variable_list grad_outputs) {
    return {grad_outputs[0]};
  }
};

/// clip(x, 0, 1) with gradient 1 on the closed interval [0, 1] and 0 outside.
struct ClipUnit : public torch::autograd::Function<ClipUnit> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x) {
    ctx->save_for_backward({x});
    return torch::clamp(x, 0.0, 1.0);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto x = ctx->get_saved_variables()[0];
    const auto inside = (x >= 0).logical_and(x <= 1);
    return {grad_outputs[0] * inside.to(grad_outputs[0].scalar_type())};
  }
};

/// Q_k(clip(x, 0, 1)) in one pass each way (fused_kernels.h); same values and gradient as
/// quantize_unit(ClipUnit(x)).
struct FusedActivation : public torch::autograd::Function<FusedActivation> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, double levels) {
    ctx->save_for_backward({x});
    return fused::activation_forward(x, static_cast<float>(levels));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto x = ctx->get_saved_variables()[0];
    return {fused::activation_backward(x, grad_outputs[0]), torch::Tensor()};
  }
};

/// The k >= 2 weight formula as one node: tanh and the max stay LibTorch ops (vectorised
/// already), the elementwise chains before and after the rounding are one kernel each.
struct FusedWeight : public torch::autograd::Function<FusedWeight> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor w, double levels,
                               bool detach_max) {
    auto t = torch::tanh(w);
    auto max_raw = t.abs().max();
    auto max_abs = max_raw.clamp_min(kMaxFloor);
    ctx->save_for_backward({t, max_raw, max_abs});
    ctx->saved_data["detach_max"] = detach_max;
    return fused::weight_forward(t, max_abs, static_cast<float>(levels));
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& t = saved[0];
    const auto& max_raw = saved[1];
    const auto& max_abs = saved[2];
    const auto& grad = grad_outputs[0];
    torch::Tensor share = torch::zeros({}, t.options());
    if (!ctx->saved_data["detach_max"].toBool()) {
      // What the composite's autograd does: d(t / M)/dM summed, through clamp_min's mask, spread
      // evenly over the elements attaining max|t|.
      const auto to_max = (-grad * t / (max_abs * max_abs)).sum() * (max_raw >= kMaxFloor);
      share = to_max / (t.abs() == max_raw).sum();
    }
    return {fused::weight_backward(t, grad, max_abs, share), torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor generic_weight(const torch::Tensor& w, int bits, bool detach_max) {
  const auto t = torch::tanh(w);
  auto max_abs = t.abs().max().clamp_min(kMaxFloor);
  if (detach_max) max_abs = max_abs.detach();
  // Same operation order as the authors' normalization_on_weights, for identical float32 rounding.
  const auto unit = t / max_abs * 0.5 + 0.5;
  return 2 * quantize_unit(unit, bits) - 1;
}

}  // namespace

torch::Tensor quantize_unit(const torch::Tensor& r, int bits) {
  check_bits(bits, "quantize_unit");
  if (bits == kFullPrecisionBits) return r;
  return RoundSTE::apply(r, std::ldexp(1.0, bits) - 1.0);
}

torch::Tensor quantize_weight(const torch::Tensor& w, int bits, const WeightOptions& options) {
  check_bits(bits, "quantize_weight");
  if (bits == kFullPrecisionBits) return w;
  if (bits == 1 && options.k1_weights() == K1Weights::scaled) {
    const auto mean_abs = w.abs().mean().detach();
    if (options.k1_gradient() == K1Gradient::identity) {
      // sign(w/E) == sign(w) for E > 0; the floor keeps an all-zero weight from dividing by 0.
      return SignSTE::apply(w / mean_abs.clamp_min(1e-12)) * mean_abs;
    }
    return SignSTE::apply(w) * mean_abs;
  }
  if (options.kernels() == Kernels::fused && fused::supports_weight(w)) {
    return FusedWeight::apply(w, std::ldexp(1.0, bits) - 1.0, options.detach_max());
  }
  return generic_weight(w, bits, options.detach_max());
}

std::optional<WeightGrid> weight_grid(const torch::Tensor& w, int bits,
                                      const WeightOptions& options) {
  check_bits(bits, "weight_grid");
  if (bits == kFullPrecisionBits) return std::nullopt;
  const auto real = torch::TensorOptions().dtype(torch::kDouble);
  if (bits == 1 && options.k1_weights() == K1Weights::scaled) {
    // E as quantize_weight computes it (float), so codes * 2E - E gives its values exactly.
    const auto mean_abs = w.detach().abs().mean().to(torch::kDouble);
    return WeightGrid{2 * mean_abs, -mean_abs, 2};
  }
  const auto levels = static_cast<int64_t>(std::ldexp(1.0, bits));
  return WeightGrid{torch::tensor(2.0 / static_cast<double>(levels - 1), real),
                    torch::tensor(-1.0, real), levels};
}

torch::Tensor clip_activation(const torch::Tensor& x) { return ClipUnit::apply(x); }

torch::Tensor quantize_activation(const torch::Tensor& x, int bits,
                                  const ActivationOptions& options) {
  check_bits(bits, "quantize_activation");
  if (bits == kFullPrecisionBits) return torch::relu(x);
  if (options.kernels() == Kernels::fused && fused::supports_activation(x)) {
    return FusedActivation::apply(x, std::ldexp(1.0, bits) - 1.0);
  }
  return quantize_unit(ClipUnit::apply(x), bits);
}

}  // namespace lowbit::dorefa
