#include <lowbit/bench/step_bench.h>
#include <lowbit/experiment/experiment.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>

#include <sys/resource.h>

namespace lowbit {
namespace {

// Linux keeps the process's peak resident set (VmHWM); writing "5" to clear_refs resets it, so
// each setting gets its own peak instead of the process's peak so far.
void reset_peak_resident() { std::ofstream("/proc/self/clear_refs") << "5"; }

double peak_resident_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

StepTiming time_steps(const std::shared_ptr<NetworkImpl>& network, const StepBenchOptions& options,
                      const std::string& setting) {
  network->to(options.device);
  network->train();
  torch::optim::SGD optimizer(network->parameters(),
                              torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4));
  const auto float_options = torch::TensorOptions().device(options.device);
  auto images = torch::randn({options.batch_size, options.channels, options.image_size,
                              options.image_size}, float_options);
  auto labels = torch::randint(options.classes, {options.batch_size},
                               float_options.dtype(torch::kLong));
  auto step = [&] {
    optimizer.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(network->forward(images).logits, labels);
    loss.backward();
    optimizer.step();
    if (options.device.is_cuda()) torch::cuda::synchronize();
  };
  reset_peak_resident();
  for (int64_t i = 0; i < options.warmup_steps; ++i) step();
  std::vector<double> milliseconds;
  for (int64_t i = 0; i < options.steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    step();
    milliseconds.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  StepTiming timing;
  timing.setting = setting;
  timing.median_ms = median(milliseconds);
  timing.images_per_second = options.batch_size / (timing.median_ms / 1000.0);
  // Device memory would need the CUDA allocator's headers, which a CPU LibTorch lacks.
  timing.peak_memory_mb = options.device.is_cuda() ? 0.0 : peak_resident_mb();
  return timing;
}

}  // namespace

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
}

StepBenchResult bench_training_steps(const Registry& registry, const StepBenchOptions& options) {
  const ModelSpec spec{options.channels, options.classes, options.image_size};
  const auto& model = registry.model(options.model);
  nlohmann::json no_options = nlohmann::json::object();
  std::shared_ptr<const Quantizer> quantizer =
      registry.quantizer(options.quantizer)(JsonReader(no_options, "bench"));

  StepBenchResult result;
  torch::manual_seed(options.seed);
  QuantizedLayerFactory full_precision(nullptr, PrecisionPolicy{});
  result.full_precision = time_steps(model(spec, full_precision), options, "32W32A");

  torch::manual_seed(options.seed);
  QuantizedLayerFactory quantized(
      quantizer, PrecisionPolicy{options.weight_bits, options.activation_bits, false});
  result.quantized = time_steps(model(spec, quantized), options,
                                precision_label(options.weight_bits, options.activation_bits));
  return result;
}

}  // namespace lowbit
