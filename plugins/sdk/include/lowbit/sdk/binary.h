#pragma once
// The pieces binary quantizers share (Bi-Real, Group-Net, a plugin of one's own): sign with a
// chosen sign(0), the ApproxSign derivative, and the "sign_zero" option.

#include <lowbit/sdk/json_reader.h>

#include <torch/torch.h>

namespace lowbit {

/// What sign(0) is.
enum class SignZero {
  plus_one,  ///< +1: every value stays binary (Larq's rule, ours)
  zero,      ///< 0: torch.sign, as PyTorch references have it (for parity tests)
};

/// sign(x) with sign(0) as `zero` says; no gradient of its own (a custom Function's forward).
torch::Tensor binary_sign(const torch::Tensor& x, SignZero zero);

/// d ApproxSign / dx (Bi-Real, Liu et al. 2018): 2 + 2x on [-1, 0), 2 - 2x on [0, 1), 0 elsewhere.
torch::Tensor approx_sign_slope(const torch::Tensor& x);

/// The option "sign_zero": "plus_one" (default) | "zero".
SignZero read_sign_zero(const JsonReader& options);

}  // namespace lowbit
