// `lowbit bench`: times training steps at full precision and quantized (and with KD).

#include "commands.h"

#include <lowbit/bench/step_bench.h>
#include <lowbit/experiment/experiment.h>
#include <lowbit/runner/sweep.h>
#include <lowbit/sdk/json_reader.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

namespace lowbit::cli {
namespace {

struct BenchArguments {
  StepBenchOptions options;
  std::string precision = "2W2A";
  std::string device = "auto";
  int64_t threads = 0;
  std::string quantizer_options = "{}";
  std::string mixed_precision = "off";
  bool kd = false;
  /// kd's posterior terms only by default, as bench/reference.py.
  std::string kd_options = R"({"loss": "posterior"})";
};

/// A JSON object given on the command line, e.g. --quantizer-options '{"kernels": "composite"}'.
nlohmann::json json_object_argument(const std::string& text, const std::string& option) {
  const auto value = parse_json(text, option);
  if (!value.is_object()) {
    throw std::invalid_argument(
        fmt::format("{}: must be a JSON object, e.g. '{{\"loss\": \"both\"}}'", option));
  }
  return value;
}

int command_bench(Environment& env, const BenchArguments& args) {
  auto& components = env.complete_components();
  StepBenchOptions options = args.options;
  options.quantizer_options = json_object_argument(args.quantizer_options, "--quantizer-options");
  options.performance.mixed_precision =
      value_named(mixed_precision_names(), args.mixed_precision, "mixed precision");
  if (args.kd) {
    options.distillation_strategy = "kd";
    options.kd_options = json_object_argument(args.kd_options, "--kd-options");
  }
  // Read as an experiment's "precisions" entry is, with the same checks and messages.
  const nlohmann::json precision = args.precision;
  const auto bits = parse_precision(precision, "", "--precision");
  options.weight_bits = bits.first;
  options.activation_bits = bits.second;
  options.device = resolve_device(args.device);
  set_intra_op_threads(args.threads);
  const auto result = bench_training_steps(components.registry, options);
  print_step_bench(std::cout, options, result, torch::get_num_threads());
  return 0;
}

}  // namespace

void add_bench(CLI::App& app, Handler& handler) {
  auto* command =
      app.add_subcommand("bench", "time training steps at full precision and quantized");
  auto args = std::make_shared<BenchArguments>();
  auto& options = args->options;
  command->add_option("--model", options.model, "model of the zoo")->capture_default_str();
  command->add_option("--quantizer", options.quantizer, "quantizer")->capture_default_str();
  command->add_option("--precision", args->precision, "quantized setting, e.g. 2W2A")
      ->capture_default_str();
  command->add_option("--batch", options.batch_size, "batch size")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--channels", options.channels, "input channels")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--image-size", options.image_size, "input height and width")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--classes", options.classes, "classes")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--steps", options.steps, "timed steps")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--warmup", options.warmup_steps, "untimed steps first")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  command->add_option("--device", args->device, "auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  command->add_option("--threads", args->threads, "intra-op threads (0: every hardware thread)")
      ->check(CLI::NonNegativeNumber);
  command
      ->add_option("--quantizer-options", args->quantizer_options,
                   "the quantizer's options as a JSON object")
      ->capture_default_str();
  command->add_flag("--kd", args->kd,
                    "also time the quantized setting with joint knowledge distillation");
  command->add_option("--kd-options", args->kd_options,
                      "the kd strategy's options as a JSON object (default {\"loss\": "
                      "\"posterior\"}, as bench/reference.py)");
  command->add_flag("--channels-last", options.performance.channels_last,
                    "NHWC layout for inputs and 4-d parameters");
  command->add_option("--mixed-precision", args->mixed_precision, "off or bf16 (autocast)")
      ->check(CLI::IsMember({"off", "bf16"}))
      ->capture_default_str();
  command->add_flag("--cudnn-benchmark", options.performance.cudnn_benchmark,
                    "let cuDNN time and pick convolution algorithms");
  command->callback([&handler, args] {
    handler = [args](Environment& env) { return command_bench(env, *args); };
  });
}

}  // namespace lowbit::cli
