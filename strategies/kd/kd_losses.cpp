#include "kd_losses.h"

namespace lowbit::kd {

torch::Tensor posterior_loss(const torch::Tensor& logits, const torch::Tensor& target_logits,
                             double temperature) {
  namespace F = torch::nn::functional;
  auto log_p = F::log_softmax(logits / temperature, F::LogSoftmaxFuncOptions(1));
  auto target = F::softmax(target_logits.detach() / temperature, F::SoftmaxFuncOptions(1));
  auto kl = F::kl_div(log_p, target, F::KLDivFuncOptions().reduction(torch::kBatchMean));
  return temperature * temperature * kl;
}

torch::Tensor attention_map(const torch::Tensor& features, AttentionForm form) {
  namespace F = torch::nn::functional;
  auto map = form == AttentionForm::paper ? features.abs().sum(1) : features.pow(2).mean(1);
  return F::normalize(map.view({features.size(0), -1}),
                      F::NormalizeFuncOptions().p(2).dim(1).eps(1e-12));
}

torch::Tensor attention_loss(const torch::Tensor& map, const torch::Tensor& target_map,
                             AttentionForm form) {
  const auto difference = map - target_map.detach();
  if (form == AttentionForm::paper) return difference.norm(2, {1}).mean();
  return difference.pow(2).mean();
}

}  // namespace lowbit::kd
