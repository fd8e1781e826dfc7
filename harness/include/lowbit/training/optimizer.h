#pragma once
// The optimizer every training step uses: the trainer's stages and `lowbit bench` build it here,
// so a timed step updates exactly as a trained one does.

#include <lowbit/training/options.h>

#include <torch/torch.h>

#include <vector>

namespace lowbit {

/// SGD over `parameters` with the options' momentum, Nesterov flag and weight decay, starting at
/// `learning_rate` (a stage's; OptimizerOptions::learning_rate is the run's, which stages rescale).
torch::optim::SGD make_sgd(const OptimizerOptions& options, std::vector<torch::Tensor> parameters,
                           double learning_rate);

}  // namespace lowbit
