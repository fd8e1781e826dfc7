#pragma once
// LQ-Net quantizers: Zhang et al., "LQ-Nets: Learned Quantization for Highly Accurate and Compact
// Deep Neural Networks", ECCV 2018; reference microsoft/LQ-Nets learned_quantization.py
// (spec: shared/spec/quantizers.md §2).
//
// A K-bit quantizer has a basis v in R^K; its 2^K levels are v^T e for every code e:
//   weights      e in {-1,+1}^K, one basis per output channel (basis shape [K, C_out])
//   activations  e in {0,1}^K,   one basis per layer           (basis shape [K, 1])
// Bit j of code i is set when (i >> j) & 1. Encoding is by nearest level: the levels are sorted,
// the thresholds are the midpoints of neighbours, and x gets level #{i : x > t_i} (a tie at a
// threshold goes to the lower level), exactly the reference's loop.
//
// Gradients (straight-through): weights dL/dw = dL/dw_q; activations dL/dx = dL/dy * 1[x <= q_max].
//
// QEM (the basis update; no gradient reaches the basis): on every training-mode forward pass the
// quantizer encodes its input with the stored basis (the same encoding as the forward output), fits
//   weights      v*_c = (B_c^T B_c + delta I)^-1 (B_c^T x_c + delta v_c)   per channel, delta =
//   1e-4 activations  v*   = (B^T B)^-1 B^T x                                   per layer, no ridge
// and moves the basis toward v* with a moving average of decay 0.9.
//
// Decisions (spec §8), each with its alternative:
// * EMA (§8.5): zero-debiased by default, as the reference's TF assign_moving_average: with
//   biased_0 = 0, biased_t = 0.9 biased_{t-1} + 0.1 v*_t and basis_t = biased_t / (1 - 0.9^t), so
//   the first update sets the basis to v*_1. Ema::plain is the paper's basis <- 0.9 basis + 0.1 v*.
//   The debiased form needs `biased` and a step counter, both buffers (checkpointed).
// * Singular activation fits (§8.6): B^T B is an integer matrix, singular iff its determinant is 0
//   (some bit never set, e.g. all inputs below t_0). Default: skip that update and keep the basis;
//   SingularFit::pseudo_inverse takes the minimum-norm least-squares solution instead. Weight fits
//   have the ridge and are never singular.
// * Timing (§8.7): the update runs inside forward() in training mode, under NoGradGuard, after the
//   output was computed with the stored basis, so step t uses basis_{t-1} and step t+1 sees the new
//   one; eval mode never updates. The statistics are the whole batch on this process (the
//   reference uses the main GPU's sub-batch). A layer held at full precision (SP) does not update.
// * The activation module replaces the network's ReLU (it sits where the ReLU was), so it quantizes
//   relu(x), as BNReLU -> QA does in the reference; the ReLU's own gradient mask is kept.
// * Supported widths: K = 1..8 (2^K levels are enumerated) and 32 = not quantized. Changing K (PP)
//   restarts the basis at the initial values of §2.2.

#include <torch/torch.h>

#include <cstdint>

namespace lowbit::lqnet {

/// Most bits a basis may have (all 2^K codes are enumerated).
constexpr int kMaxBits = 8;

enum class Ema {
  debiased,  ///< TF assign_moving_average(zero_debias=True), the reference
  plain,     ///< basis <- decay basis + (1 - decay) v*, the paper
};

enum class SingularFit {
  skip,            ///< keep the basis for this step
  pseudo_inverse,  ///< v* = pinv(B^T B) B^T x
};

struct QemOptions {
  /// Moving-average form.
  TORCH_ARG(Ema, ema) = Ema::debiased;
  /// Moving-average decay ("momentum" in the reference).
  TORCH_ARG(double, decay) = 0.9;
  /// Ridge of the weight fit, toward the old basis.
  TORCH_ARG(double, ridge) = 1e-4;
  /// What a singular activation fit does.
  TORCH_ARG(SingularFit, singular) = SingularFit::skip;
};

/// All 2^K codes as rows [2^K, K]: +-1 entries (`signed_codes`, weights) or 0/1 (activations).
torch::Tensor code_matrix(int bits, bool signed_codes, const torch::TensorOptions& options = {});

/// Initial activation basis [K, 1]: v_j = 0.6745 * 2 / (2^K - 1) * 2^j.
torch::Tensor initial_activation_basis(int bits);
/// Initial weight basis [K, C_out]: v_j = 2^j * 0.6745 * sqrt(2 / (k*k*C_out)) / 2^(K-1).
torch::Tensor initial_weight_basis(int bits, int64_t kernel, int64_t out_channels);

struct Encoding {
  torch::Tensor values;  ///< [C, N] nearest levels
  torch::Tensor codes;   ///< [C, N, K] the code of each value (+-1 or 0/1)
};

/// Nearest-level encoding of rows x [C, N] with per-row bases `basis` [K, C].
Encoding encode(const torch::Tensor& x, const torch::Tensor& basis, bool signed_codes);

/// Ridge least squares per channel: [K, C] from x [C, N], codes [C, N, K] and the old basis.
torch::Tensor fit_weight_basis(const torch::Tensor& x, const torch::Tensor& codes,
                               const torch::Tensor& old_basis, double ridge);
/// Least squares of one layer: [K, 1] from x [1, N] and codes [1, N, K]; undefined tensor when
/// B^T B is singular and `singular` is SingularFit::skip.
torch::Tensor fit_activation_basis(const torch::Tensor& x, const torch::Tensor& codes,
                                   SingularFit singular);

/// Moves `basis` toward `target` in place; `biased` and `steps` are the debiased form's state.
void moving_average(torch::Tensor& basis, torch::Tensor& biased, torch::Tensor& steps,
                    const torch::Tensor& target, const QemOptions& options);

/// Forward `quantized`, backward identity to `w`.
torch::Tensor weight_ste(const torch::Tensor& w, const torch::Tensor& quantized);
/// Forward `quantized`, backward dL/dx * 1[x <= max_level].
torch::Tensor activation_ste(const torch::Tensor& x, const torch::Tensor& quantized,
                             const torch::Tensor& max_level);

}  // namespace lowbit::lqnet
