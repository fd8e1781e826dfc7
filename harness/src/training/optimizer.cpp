#include <lowbit/training/optimizer.h>

namespace lowbit {

torch::optim::SGD make_sgd(const OptimizerOptions& options, std::vector<torch::Tensor> parameters,
                           double learning_rate) {
  return torch::optim::SGD(std::move(parameters), torch::optim::SGDOptions(learning_rate)
                                                      .momentum(options.momentum)
                                                      .nesterov(options.nesterov)
                                                      .weight_decay(options.weight_decay));
}

}  // namespace lowbit
