#pragma once
// One optimisation step, as the trainer runs it and as `lowbit bench` times it: the strategies'
// step hooks, the forward pass (under autocast when asked), the student's loss (cross-entropy
// weighted by the strategies' factors, plus their extra terms), backward and the update.

#include <lowbit/sdk/strategy.h>
#include <lowbit/training/performance.h>

#include <torch/torch.h>

#include <vector>

namespace lowbit {

struct StepOutput {
  NetworkOutput output;
  torch::Tensor loss;  ///< the student's total loss, still attached to the graph's result
};

/// What the step's optimizer updates: the network's parameters and the strategies' extra ones.
std::vector<torch::Tensor> trainable_parameters(NetworkImpl& network,
                                                const std::vector<Strategy*>& strategies);

/// The product of the strategies' cross-entropy factors (e.g. KD's α2).
double cross_entropy_weight(const std::vector<Strategy*>& strategies);

/// `state.learning_rate` must already hold this step's rate (strategies read it).
StepOutput train_step(NetworkImpl& network, torch::optim::Optimizer& optimizer,
                      TrainingState& state, const std::vector<Strategy*>& strategies,
                      const Batch& batch, const PerformanceOptions& performance);

}  // namespace lowbit
