#pragma once
// Group-Net: Zhuang et al., "Structured Binary Neural Networks for Accurate Image Classification
// and Semantic Segmentation", CVPR 2019; reference bohanzhuang/Group-Net-image-classification
// (new_layers.py Q_A/Q_W/self_conv, model_ablation_2.py); spec shared/spec/quantizers.md §4.
//
//   activations  Q_A: sign(x); backward ApproxSign (2 + 2x on [-1, 0), 2 - 2x on [0, 1), else 0)
//   weights      Q_W: W_b = sign(W) mean|W|, the mean over the whole tensor; identity backward
//   binary conv  the input is padded with the constant +1 (not 0), so the border stays binary
//   block        K parallel binary bases (groupnet_plugin.cpp), each a Bi-Real-like double block
//                o1 = BN1(ReLU(BinConv1(a))) + R,  o2 = BN2(ReLU(BinConv2(sign(o1)))) + o1
//                with a = sign(x), R = x or BN_d(BinConv1x1/stride(a)) (one downsample shared by
//                all bases), aggregated as Y = sum_k lambda_k o2_k with learned lambda_k ~ U[0,1).
//
// Decisions (spec §8):
// * sign(0) = +1 (SignZero::plus_one); SignZero::zero gives the reference's torch.sign.
// * Activation gradient (§8.13): ApproxSign as the code (ActivationGradient::approx_sign);
//   ActivationGradient::reference adds the code's quirk at x == 1 (gradient g^2 instead of 0);
//   ActivationGradient::clipped is the paper text's STE 1[|x| <= 1].
// * alpha per tensor as the code (§8.14); WeightScale::channel gives per-output-channel alpha.
// * Padding +1 as the reference (§8.12), also when SP holds a layer at full precision.
// * Variant (§8.15): no soft gates + learned scales (model_ablation_2.py) by default; the soft
//   gates (ablation_1, model.py) and mean aggregation are options of the plugin.
// * Full precision (32 bits, SP): activations tanh, the reference's FP pretraining nonlinearity;
//   weights unchanged.

#include <lowbit/sdk/binary.h>

#include <torch/torch.h>

namespace lowbit::groupnet {

using lowbit::SignZero;
enum class ActivationGradient { approx_sign, reference, clipped };
enum class WeightScale { tensor, channel };

/// Q_A: sign(x) with the chosen backward.
torch::Tensor binary_activation(const torch::Tensor& x,
                                ActivationGradient gradient = ActivationGradient::approx_sign,
                                SignZero zero = SignZero::plus_one);

/// alpha = mean |W|, per tensor or per output channel (shaped to broadcast over W).
torch::Tensor weight_scale(const torch::Tensor& w, WeightScale scale);

/// Q_W: alpha sign(W), identity backward.
torch::Tensor binary_weight(const torch::Tensor& w, WeightScale scale = WeightScale::tensor,
                            SignZero zero = SignZero::plus_one);

/// The soft connection between blocks: sigmoid(theta) base + (1 - sigmoid(theta)) aggregate.
torch::Tensor soft_gate(const torch::Tensor& base, const torch::Tensor& aggregate,
                        const torch::Tensor& theta);

/// Pads the last two dimensions with the constant +1 (self_conv), `padding` on every side.
torch::Tensor pad_with_ones(const torch::Tensor& x, int64_t padding);

}  // namespace lowbit::groupnet
