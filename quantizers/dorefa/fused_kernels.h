#pragma once
// One-pass DoReFa kernels. The composite form of an activation quantizer reads and writes the
// whole activation four times forward (clamp, scale, round, unscale) and five times backward
// (two comparisons, and, cast, multiply); these do each direction in one pass, which is what
// makes a quantized network cost about what a ReLU network costs. Same float32 operations in the
// same order as the composite (dorefa.cpp), so the outputs are bit for bit the composite's; the
// weight gradient's one reduction may differ in the last bits (summation order).
//
// The rounding is rint() under the default round-to-nearest-even mode, i.e. torch::round's
// half-to-even; LibTorch never changes the floating-point rounding mode. bfloat16 activations are
// computed in float32 and rounded to bfloat16 (to nearest even, as c10::BFloat16) after the
// multiply and after the divide, the two places where the composite's bfloat16 ops round.

#include <torch/torch.h>

namespace lowbit::dorefa::fused {

/// Whether the activation kernels handle `x`: dense float32 or bfloat16 (what autocast's layers
/// hand on) on the CPU, or on a CUDA device when the plugin was built with its CUDA kernels.
/// Anything else takes the composite path.
bool supports_activation(const torch::Tensor& x);

/// Whether the weight kernels handle `w`: as supports_activation, float32 only (parameters stay
/// float32 under autocast).
bool supports_weight(const torch::Tensor& w);

/// Whether this build carries the CUDA kernels (LOWBIT_CUDA_KERNELS).
bool has_cuda_kernels();

/// rint(clamp(x, 0, 1) * levels) / levels, in x's type.
torch::Tensor activation_forward(const torch::Tensor& x, float levels);

/// grad where 0 <= x <= 1, 0 elsewhere (the closed-interval straight-through mask).
torch::Tensor activation_backward(const torch::Tensor& x, const torch::Tensor& grad);

/// 2 * rint((t / max_abs * 0.5 + 0.5) * levels) / levels - 1, for t = tanh(w) and the 0-dim
/// max_abs = max|t|.
torch::Tensor weight_forward(const torch::Tensor& t, const torch::Tensor& max_abs, float levels);

/// dL/dw from dL/dw_q = grad, with straight-through rounding:
///   (grad / max_abs + [|t| == max_abs] * sign(t) * max_share) * (1 - t^2)
/// max_share (0-dim) is the gradient reaching max_abs divided by the number of elements that
/// attain it, as autograd's max() spreads it evenly; zero when the max is detached.
torch::Tensor weight_backward(const torch::Tensor& t, const torch::Tensor& grad,
                              const torch::Tensor& max_abs, const torch::Tensor& max_share);

}  // namespace lowbit::dorefa::fused
