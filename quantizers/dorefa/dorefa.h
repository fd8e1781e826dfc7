#pragma once
// DoReFa-Net quantizers: Zhou et al., "DoReFa-Net: Training Low Bitwidth Convolutional Neural
// Networks with Low Bitwidth Gradients", arXiv 1606.06160; in the form Zhuang et al. run it as
// their baseline ("Effective Training of Convolutional Neural Networks with Low-bitwidth Weights
// and Activations", TPAMI 2021; code: bohanzhuang/Towards-Effective-Low-bitwidth-Convolutional-
// Neural-Networks, file ipytorch/models/dqn/quantization.py).
//
// With n = 2^k - 1:
//   Q_k(r)      = round(n r) / n                      r in [0,1]; STE: dQ/dr = 1
//   weights     k = 32: w
//               k >= 2: 2 Q_k( tanh(w) / max|tanh(w)| * 1/2 + 1/2 ) - 1, max over the whole tensor
//               k = 1:  sign(w) * E, E = mean|w| over the whole tensor     ("scaled", default)
//                   or  the k >= 2 formula at k = 1, i.e. unscaled +-1      ("authors")
//   activations k = 32: relu(x)
//               k < 32: Q_k( clip(x, 0, 1) ); gradient 1 on the closed interval [0,1], 0 outside
//
// Decisions, each with its alternative:
// * round is torch::round, half to even (0.5 -> 0, 1.5 -> 2) as in TF and PyTorch, never
//   std::round (halves away from zero), so 1-bit activations map 0.5 to 0 like the references.
// * k >= 2 weights: the gradient flows through max|tanh(w)| as in the TF reference and the authors'
//   PyTorch code ("grad_authors" in tests/data/golden_dorefa_kd.json); it changes the gradient of
//   the argmax element. WeightOptions::detach_max stops it ("grad_max_detached").
// * k = 1 weights: the authors' code applies the generic formula, giving unscaled +-1; the DoReFa
//   reference (tensorpack BWN branch) gives +-E. We default to +-E so that a 1-bit layer keeps the
//   weight's magnitude; K1Weights::authors keeps the authors' form for reproducing their runs.
// * k = 1 weights, sign(0) = +1 (so 0 maps to +E): the output stays binary, as our style guide
//   (after Larq) requires and as the authors' SignMeanRoundFunction does. tensorpack's tf.sign and
//   torch::sign give 0 there, a third level. The golden vectors hold no exact zero: both fit them.
// * k = 1 weights, gradient: the identity, dL/dw = dL/dw_q (K1Gradient::identity, default). This
//   is what the DoReFa paper, tensorpack (Sign's gradient overridden by Identity on sign(w/E) * E,
//   E a stop-gradient, so the 1/E and E cancel) and the authors' SignFunction /
//   SignMeanRoundFunction all compute (spec 1.2); golden "grad_bwn_tensorpack" holds it since its
//   2026-12-01 correction. K1Gradient::scaled keeps E * dL/dw_q (option "k1_gradient": "scaled"),
//   what sign(w) * E with an identity sign gives, which the golden file once held by mistake.
// * Full-precision activations (32 bits, and layers SP holds back): ReLU, the full-precision
//   network's own nonlinearity, so that a held layer is the FP model's layer;
//   FullPrecisionActivation::clip (option "full_precision_activation": "clip") gives the authors'
//   QReLU without its rounding, clip(x, 0, 1), so that a held layer differs from a quantized one
//   by the rounding alone.
// * Activations: the clip's gradient mask is written out (closed interval) rather than left to
//   torch::clamp's backward, so the boundary convention cannot change with the LibTorch version.
// * Kernels: float32 tensors on the CPU (and on CUDA when the plugin is built with its kernels)
//   take one-pass fused kernels (fused_kernels.h) with the composite's results; Kernels::composite
//   (option "kernels": "composite") keeps the chain of LibTorch ops, e.g. to compare the two.

#include <lowbit/sdk/quantizer.h>

#include <torch/torch.h>

#include <optional>

namespace lowbit::dorefa {

/// Which 1-bit weight form to use (see the header comment).
enum class K1Weights {
  scaled,   ///< sign(w) * mean|w| (DoReFa reference, BWN)
  authors,  ///< the generic formula at k = 1: unscaled +-1 (Zhuang et al.'s code)
};

/// The gradient of scaled 1-bit weights (see the header comment).
enum class K1Gradient {
  identity,  ///< dL/dw = dL/dw_q (DoReFa paper, tensorpack, the authors' SignFunction)
  scaled,    ///< dL/dw = E * dL/dw_q
};

/// How the quantizers compute (see the header comment).
enum class Kernels {
  fused,      ///< one-pass kernels where they apply, the composite elsewhere
  composite,  ///< LibTorch ops only
};

struct WeightOptions {
  /// 1-bit weight form.
  TORCH_ARG(K1Weights, k1_weights) = K1Weights::scaled;
  /// Stop the gradient through max|tanh(w)| (k >= 2).
  TORCH_ARG(bool, detach_max) = false;
  /// Gradient of scaled 1-bit weights.
  TORCH_ARG(K1Gradient, k1_gradient) = K1Gradient::identity;
  /// Fused kernels or the composite (k >= 2, and the "authors" form at k = 1).
  TORCH_ARG(Kernels, kernels) = Kernels::fused;
};

/// What an activation computes at full precision: at 32 bits, and where SP holds a layer back.
enum class FullPrecisionActivation {
  relu,  ///< the full-precision network's own nonlinearity (default)
  clip,  ///< clip(x, 0, 1): the authors' QReLU without its rounding
};

struct ActivationOptions {
  /// Fused kernels or the composite (k < 32).
  TORCH_ARG(Kernels, kernels) = Kernels::fused;
  TORCH_ARG(FullPrecisionActivation, full_precision) = FullPrecisionActivation::relu;
};

/// Q_k(r) = round((2^k - 1) r) / (2^k - 1) with a straight-through gradient; identity at k = 32.
torch::Tensor quantize_unit(const torch::Tensor& r, int bits);

/// DoReFa weight quantizer; `bits` in 1..32.
torch::Tensor quantize_weight(const torch::Tensor& w, int bits,
                              const WeightOptions& options = WeightOptions());

/// The grid quantize_weight(w, bits, options) lies on: 2^k levels on [-1, 1] (2/(2^k - 1) apart,
/// from -1), or {-E, +E} for scaled 1-bit weights; nullopt at 32 bits.
std::optional<WeightGrid> weight_grid(const torch::Tensor& w, int bits,
                                      const WeightOptions& options = WeightOptions());

/// clip(x, 0, 1) with gradient 1 on the closed interval [0, 1], 0 outside.
torch::Tensor clip_activation(const torch::Tensor& x);

/// DoReFa activation quantizer Q_k(clip(x, 0, 1)); relu(x) at k = 32.
torch::Tensor quantize_activation(const torch::Tensor& x, int bits,
                                  const ActivationOptions& options = ActivationOptions());

}  // namespace lowbit::dorefa
