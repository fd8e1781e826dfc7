#include <lowbit/training/train_step.h>

namespace lowbit {

std::vector<torch::Tensor> trainable_parameters(NetworkImpl& network,
                                                const std::vector<Strategy*>& strategies) {
  auto parameters = network.parameters();
  for (auto* strategy : strategies) {
    for (auto& extra : strategy->extra_parameters()) parameters.push_back(extra);
  }
  return parameters;
}

double cross_entropy_weight(const std::vector<Strategy*>& strategies) {
  double weight = 1.0;
  for (auto* strategy : strategies) weight *= strategy->cross_entropy_weight();
  return weight;
}

StepOutput train_step(NetworkImpl& network, torch::optim::Optimizer& optimizer,
                      TrainingState& state, const std::vector<Strategy*>& strategies,
                      const Batch& batch, const PerformanceOptions& performance) {
  for (auto* strategy : strategies) strategy->on_step_begin(state, batch);
  StepOutput step;
  {
    // Forward passes and losses only: backward runs in the types autocast chose for forward.
    AutocastScope autocast(state.device, performance.autocast_bf16());
    step.output = network.forward(batch.images);
    step.loss = cross_entropy_weight(strategies) *
                torch::nn::functional::cross_entropy(step.output.logits, batch.labels);
    for (auto* strategy : strategies) {
      auto extra = strategy->extra_loss(state, batch, step.output);
      if (extra.defined()) step.loss = step.loss + extra;
    }
  }
  optimizer.zero_grad();
  step.loss.backward();
  optimizer.step();
  for (auto* strategy : strategies) strategy->on_step_end(state);
  return step;
}

}  // namespace lowbit
