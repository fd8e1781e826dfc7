#pragma once
// Times training steps (forward, backward, SGD update) on random data: the number a user
// compares with the same step written in PyTorch Python, and the cost of a quantizer over
// full precision.

#include <lowbit/layers/quantized_layers.h>
#include <lowbit/sdk/registry.h>

#include <torch/torch.h>

#include <string>
#include <vector>

namespace lowbit {

struct StepBenchOptions {
  std::string model = "resnet20";
  std::string quantizer = "dorefa";
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
  /// Quantized over full-precision median step time.
  double overhead() const { return quantized.median_ms / full_precision.median_ms; }
};

/// Times `steps` steps after `warmup_steps`, for the full-precision network and for the same
/// network with the quantizer at the given precision.
StepBenchResult bench_training_steps(const Registry& registry, const StepBenchOptions& options);

/// Median of step times in milliseconds.
double median(std::vector<double> values);

}  // namespace lowbit
