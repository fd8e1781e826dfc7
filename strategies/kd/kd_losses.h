#pragma once
// The losses of joint knowledge distillation (paper, Strategies; checked against the "kl" and
// "attention" vectors of tests/data/golden_dorefa_kd.json).
//
//  posterior:  T² · KL(softmax(target/T) ‖ softmax(logits/T)), mean over the batch; the target is
//              the other network's logits, detached.
//  attention (AttentionForm::squared_mean, default): A(f) = normalize(mean over channels of f²,
//              flattened per sample) (L2, eps 1e-12); loss = mean over batch and positions of
//              (A_s − A_t)², summed over the stages. This is Zagoruyko & Komodakis's reference
//              form, the one γ = 50 was tuned with.
//  attention (AttentionForm::paper, the paper's Eq. 6 as written): A(f) = normalize(Σ over
//              channels of |f|); loss = ‖A_s − A_t‖₂ per sample, mean over the batch, summed over
//              the stages.
//  Q(μ) (kd.cpp): the teacher's feature maps are quantized as the student's activations are, and
//  the attention map is then taken from them. The normalised map itself is never quantized: its
//  entries are about 1/sqrt(H·W), so a k-bit grid on [0, 1] would round them all to 0.

#include <torch/torch.h>

namespace lowbit::kd {

enum class AttentionForm { squared_mean, paper };

/// T² · KL(p_target ‖ p), batch-mean; gradient flows into `logits` only.
torch::Tensor posterior_loss(const torch::Tensor& logits, const torch::Tensor& target_logits,
                             double temperature);

/// Normalised spatial attention map of a feature tensor [B, C, H, W] → [B, H·W].
torch::Tensor attention_map(const torch::Tensor& features,
                            AttentionForm form = AttentionForm::squared_mean);

/// The attention loss between two maps; gradient flows into `map` only.
torch::Tensor attention_loss(const torch::Tensor& map, const torch::Tensor& target_map,
                             AttentionForm form = AttentionForm::squared_mean);

}  // namespace lowbit::kd
