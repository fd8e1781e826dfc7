#pragma once
// Bi-Real Net: Liu et al., "Bi-Real Net: Enhancing the Performance of 1-bit CNNs with Improved
// Representational Capability and Advanced Training Algorithm", ECCV 2018; reference
// liuzechun/Bi-Real-net (PyTorch birealnet.py, Caffe binary_conv/threshold layers); spec
// shared/spec/quantizers.md §3.
//
//   activations  a = sign(x) in {-1, +1}; backward ApproxSign:
//                dF/dx = 2 + 2x on [-1, 0), 2 - 2x on [0, 1), 0 elsewhere
//   weights      W_b = alpha_o sign(W), alpha_o = mean|W| over (C_in, k_h, k_w) per output channel
//                (alpha is a constant for the gradient); backward (WeightGradient):
//                magnitude_aware  dL/dW = alpha_o dL/dW_b 1[|W| < 1]     (paper; default)
//                clipped          dL/dW = dL/dW_b 1[|W| <= 1]            (released PyTorch code)
//                identity         dL/dW = dL/dW_b                        (Caffe training layer)
//   block        out = BN(BinConv3x3(sign(x))) + shortcut(x): a real-valued shortcut around every
//                binary conv; where the shape changes the shortcut is AvgPool(stride) -> 1x1 conv
//                (full precision) -> BN (bireal_plugin.cpp builds it).
//
// Decisions (spec §8):
// * sign(0) = +1 for activations and weights (SignZero::plus_one), so every value is binary as our
//   style requires; SignZero::zero reproduces torch.sign of the PyTorch reference for parity tests.
// * Weight gradient (§8.10): the paper's magnitude-aware form by default (it is what the paper
//   describes and Caffe's ModifyGradients computes); both released variants are options.
// * alpha stays in the forward pass at test time too: the paper's BN-retrain step that absorbs it
//   is a schedule, not part of the quantizer (§8.11).
// * Full precision (32 bits, and layers SP holds back) is the paper's last real-valued
//   initialisation: activations clip(x, -1, 1), weights unchanged.

#include <lowbit/sdk/binary.h>

#include <torch/torch.h>

namespace lowbit::bireal {

using lowbit::SignZero;

enum class WeightGradient { magnitude_aware, clipped, identity };

/// sign(x) with the ApproxSign backward.
torch::Tensor binary_activation(const torch::Tensor& x, SignZero zero = SignZero::plus_one);

/// alpha_o = mean |W_o| per output channel, shaped to broadcast over W.
torch::Tensor weight_scale(const torch::Tensor& w);

/// Per-output-channel alpha_o sign(W) for a weight [C_out, ...].
torch::Tensor binary_weight(const torch::Tensor& w,
                            WeightGradient gradient = WeightGradient::magnitude_aware,
                            SignZero zero = SignZero::plus_one);

}  // namespace lowbit::bireal
