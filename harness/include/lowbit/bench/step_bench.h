#pragma once
// Times training steps (forward, backward, SGD update) on random data: the number a user
// compares with the same step written in PyTorch Python, and the cost of a quantizer over
// full precision. The step is the trainer's own (training/train_step.h), strategies included,
// so KD is timed with the kd plugin's hooks, teacher update and all.

#include <lowbit/layers/quantized_layers.h>
#include <lowbit/sdk/registry.h>
#include <lowbit/training/options.h>
#include <lowbit/training/performance.h>

#include <nlohmann/json.hpp>

#include <torch/torch.h>

#include <iosfwd>
#include <string>
#include <vector>

namespace lowbit {

struct StepBenchOptions {
  std::string model = "resnet20";
  std::string quantizer = "dorefa";
  nlohmann::json quantizer_options = nlohmann::json::object();
  /// A registered strategy to also time the quantized setting with (`lowbit bench --kd` names
  /// the kd plugin's); "" times no such setting. The library knows no strategy by name.
  std::string distillation_strategy;
  /// Its options (`lowbit bench` gives kd's posterior terms only, as bench/reference.py).
  nlohmann::json kd_options = nlohmann::json::object();
  int weight_bits = 2;
  int activation_bits = 2;
  int64_t batch_size = 128;
  int64_t channels = 3;
  int64_t image_size = 32;
  int64_t classes = 10;
  int64_t warmup_steps = 3;
  int64_t steps = 20;
  uint64_t seed = 0;
  torch::Device device = torch::kCPU;
  PerformanceOptions performance;
  /// The SGD each setting steps with (the bench's own small learning rate).
  OptimizerOptions optimizer;
};

struct StepTiming {
  std::string setting;  ///< "32W32A" or the quantized precision
  double median_ms = 0;
  double images_per_second = 0;  ///< batch / median step time
  double peak_memory_mb = 0;     ///< peak resident set of the process while timing (CPU; 0 on CUDA)
};

struct StepBenchResult {
  StepTiming full_precision;
  StepTiming quantized;
  StepTiming distilled;  ///< quantized + KD; empty setting without a distillation_strategy
  /// Quantized over full-precision median step time.
  double overhead() const { return quantized.median_ms / full_precision.median_ms; }
};

/// Times `steps` steps after `warmup_steps`, for the full-precision network, for the same
/// network with the quantizer at the given precision, and (distillation_strategy) for that one
/// distilled.
StepBenchResult bench_training_steps(const Registry& registry, const StepBenchOptions& options);

/// Writes what `lowbit bench` prints: the setup (`threads`: the intra-op threads the steps ran
/// with), a table of the timed settings, and the quantizer's overhead.
void print_step_bench(std::ostream& out, const StepBenchOptions& options,
                      const StepBenchResult& result, int threads);

/// Median of step times in milliseconds.
double median(std::vector<double> values);

}  // namespace lowbit
