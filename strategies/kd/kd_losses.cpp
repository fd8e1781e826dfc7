#include "kd_losses.h"

#include <cmath>

namespace lowbit::kd {

torch::Tensor posterior_loss(const torch::Tensor& logits, const torch::Tensor& target_logits,
                             double temperature) {
  namespace F = torch::nn::functional;
  auto log_p = F::log_softmax(logits / temperature, F::LogSoftmaxFuncOptions(1));
  auto target = F::softmax(target_logits.detach() / temperature, F::SoftmaxFuncOptions(1));
  auto kl = F::kl_div(log_p, target, F::KLDivFuncOptions().reduction(torch::kBatchMean));
  return temperature * temperature * kl;
}

torch::Tensor attention_map(const torch::Tensor& features) {
  namespace F = torch::nn::functional;
  auto map = features.pow(2).mean(1).view({features.size(0), -1});
  return F::normalize(map, F::NormalizeFuncOptions().p(2).dim(1).eps(1e-12));
}

torch::Tensor quantize_map(const torch::Tensor& map, int bits) {
  if (bits >= 32) return map;
  const double levels = std::pow(2.0, bits) - 1.0;
  auto quantized = torch::round(map * levels) / levels;
  return map + (quantized - map).detach();
}

torch::Tensor attention_loss(const torch::Tensor& map, const torch::Tensor& target_map) {
  return (map - target_map.detach()).pow(2).mean();
}

}  // namespace lowbit::kd
