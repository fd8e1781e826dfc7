#pragma once
// The losses of joint knowledge distillation (paper, Strategies; checked against the "kl" and
// "attention" vectors of tests/data/golden_dorefa_kd.json).
//
//  posterior:  T² · KL(softmax(target/T) ‖ softmax(logits/T)), mean over the batch; the target is
//              the other network's logits, detached.
//  attention:  A(f) = normalize(mean over channels of f², flattened per sample) (L2, eps 1e-12);
//              loss = mean over batch and positions of (A_s − A_t)², summed over the stages
//              (Zagoruyko & Komodakis's reference form, as the spec asks).
//  "Teacher maps are taken after quantizing them (Q(μ))": our reading is that μ is the teacher's
//  attention map, and Q is k-bit uniform quantization of that map (its values lie in [0, 1]):
//  Q_k(μ) = round((2^k−1)·μ)/(2^k−1), k = the stage's activation bits (32: identity), with a
//  straight-through gradient — the teacher is compared with what a k-bit student can represent.
//  The alternative, the unquantized teacher map, is the KD option "teacher_map": "full_precision".

#include <torch/torch.h>

#include <vector>

namespace lowbit::kd {

/// T² · KL(p_target ‖ p), batch-mean; gradient flows into `logits` only.
torch::Tensor posterior_loss(const torch::Tensor& logits, const torch::Tensor& target_logits,
                             double temperature);

/// Normalised spatial attention map of a feature tensor [B, C, H, W] → [B, H·W].
torch::Tensor attention_map(const torch::Tensor& features);

/// Q_k of an attention map with a straight-through gradient; k >= 32 returns the map.
torch::Tensor quantize_map(const torch::Tensor& map, int bits);

/// Mean squared difference of two attention maps; gradient flows into `map` only.
torch::Tensor attention_loss(const torch::Tensor& map, const torch::Tensor& target_map);

}  // namespace lowbit::kd
