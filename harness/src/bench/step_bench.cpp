#include <lowbit/bench/step_bench.h>
#include <lowbit/experiment/experiment.h>
#include <lowbit/training/optimizer.h>
#include <lowbit/training/train_step.h>
#include <lowbit/training/trainer.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <ostream>
#include <string>

#include <sys/resource.h>

namespace lowbit {
namespace {

// The bench's learning rate: any small value; the step's cost does not depend on it.
constexpr double kLearningRate = 0.01;

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

/// One timed setting: a network (built at `stage`'s precision) and the strategies of its run.
struct Setting {
  std::string label;
  Stage stage;
  std::shared_ptr<NetworkImpl> network;
  std::vector<Strategy*> strategies;
};

class SettingBuilder {
 public:
  SettingBuilder(const Registry& registry, const StepBenchOptions& options)
      : registry_(registry),
        options_(options),
        spec_{options.channels, options.classes, options.image_size} {}

  std::shared_ptr<NetworkImpl> full_precision(const std::string& model) const {
    return prepared(build_network(registry_.model(model), spec_, nullptr, PrecisionPolicy{}));
  }

  std::shared_ptr<NetworkImpl> quantized() const {
    const JsonReader reader(options_.quantizer_options, "bench", "/quantizer_options");
    std::shared_ptr<const Quantizer> quantizer = registry_.quantizer(options_.quantizer)(reader);
    reader.reject_unknown_keys();
    return prepared(
        build_network(registry_.model(options_.model), spec_, quantizer,
                      PrecisionPolicy{options_.weight_bits, options_.activation_bits, false}));
  }

 private:
  std::shared_ptr<NetworkImpl> prepared(std::shared_ptr<NetworkImpl> network) const {
    if (options_.performance.channels_last) to_channels_last(*network);
    network->to(options_.device);
    return network;
  }

  const Registry& registry_;
  const StepBenchOptions& options_;
  ModelSpec spec_;
};

StepTiming time_steps(Setting& setting, const SettingBuilder& builder,
                      const StepBenchOptions& options) {
  auto& network = *setting.network;
  network.train();
  apply_stage_precision(network, setting.stage);

  TrainingState state;
  state.network = &network;
  state.device = options.device;
  state.seed = options.seed;
  state.stage = &setting.stage;
  state.model = options.model;
  state.learning_rate = kLearningRate;
  state.total_epochs = 1;
  // A step takes as long whatever the weights are: every network starts from the seed here.
  const FunctionTrainingServices services(
      [&builder](const std::string& model, NetworkStart) { return builder.full_precision(model); },
      {});
  state.services = &services;
  for (auto* strategy : setting.strategies) strategy->on_trial_begin(state);

  auto optimizer =
      make_sgd(options.optimizer, trainable_parameters(network, setting.strategies), kLearningRate);
  const auto float_options = torch::TensorOptions().device(options.device);
  Batch batch{
      input_layout(torch::randn({options.batch_size, options.channels, options.image_size,
                                 options.image_size},
                                float_options),
                   options.performance),
      torch::randint(options.classes, {options.batch_size}, float_options.dtype(torch::kLong))};
  auto step = [&] {
    train_step(network, optimizer, state, setting.strategies, batch, options.performance);
    ++state.global_step;
    if (options.device.is_cuda()) torch::cuda::synchronize();
  };
  reset_peak_resident();
  for (int64_t i = 0; i < options.warmup_steps; ++i) step();
  std::vector<double> milliseconds;
  for (int64_t i = 0; i < options.steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    step();
    milliseconds.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
  StepTiming timing;
  timing.setting = setting.label;
  timing.median_ms = median(milliseconds);
  timing.images_per_second = options.batch_size / (timing.median_ms / 1000.0);
  // Device memory would need the CUDA allocator's headers, which a CPU LibTorch lacks.
  timing.peak_memory_mb = options.device.is_cuda() ? 0.0 : peak_resident_mb();
  return timing;
}

}  // namespace

void print_step_bench(std::ostream& out, const StepBenchOptions& options,
                      const StepBenchResult& result, int threads) {
  out << fmt::format("{} {} batch {} input {}x{}x{} on {} ({} threads{}{}), median of {} steps\n",
                     options.model, options.quantizer, options.batch_size, options.channels,
                     options.image_size, options.image_size, options.device.str(), threads,
                     options.performance.channels_last ? ", channels-last" : "",
                     options.performance.autocast_bf16() ? ", bf16 autocast" : "", options.steps);
  out << fmt::format("{:<10} {:>10} {:>10} {:>12}\n", "setting", "ms/step", "img/s", "peak MB");
  for (const auto* timing : {&result.full_precision, &result.quantized, &result.distilled}) {
    if (timing->setting.empty()) continue;  // distilled, unless KD was timed
    out << fmt::format("{:<10} {:>10.1f} {:>10.0f} {:>12.0f}\n", timing->setting, timing->median_ms,
                       timing->images_per_second, timing->peak_memory_mb);
  }
  out << fmt::format("quantizer overhead (quantized / full-precision step time): {:.2f}\n",
                     result.overhead());
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
}

StepBenchResult bench_training_steps(const Registry& registry, const StepBenchOptions& options) {
  const SettingBuilder builder(registry, options);
  apply_backend_flags(options.performance, options.device);
  Stage quantized_stage;
  quantized_stage.learning_rate = kLearningRate;
  quantized_stage.weight_bits = options.weight_bits;
  quantized_stage.activation_bits = options.activation_bits;
  const std::string quantized_label = precision_label(options.weight_bits, options.activation_bits);

  StepBenchResult result;
  torch::manual_seed(options.seed);
  Setting full{"32W32A", Stage{}, builder.full_precision(options.model), {}};
  result.full_precision = time_steps(full, builder, options);

  torch::manual_seed(options.seed);
  Setting quantized{quantized_label, quantized_stage, builder.quantized(), {}};
  result.quantized = time_steps(quantized, builder, options);

  if (!options.distillation_strategy.empty()) {
    torch::manual_seed(options.seed);
    const JsonReader reader(options.kd_options, "bench", "/kd_options");
    auto distiller = registry.strategy(options.distillation_strategy)(reader);
    reader.reject_unknown_keys();
    const auto& info = registry.info(ComponentKind::strategy, options.distillation_strategy);
    const std::string label = info.label.empty() ? info.name : info.label;
    Setting distilled{
        quantized_label + "+" + label, quantized_stage, builder.quantized(), {distiller.get()}};
    result.distilled = time_steps(distilled, builder, options);
  }
  return result;
}

}  // namespace lowbit
