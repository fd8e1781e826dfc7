#include <lowbit/bench/step_bench.h>

#include "test_support.h"

#include <catch2/catch.hpp>

#include <sstream>

namespace {

/// A step benchmark small enough for a test: 4 one-channel 8x8 images, a few steps.
lowbit::StepBenchOptions tiny_bench(int64_t steps) {
  lowbit::StepBenchOptions options;
  options.batch_size = 4;
  options.image_size = 8;
  options.channels = 1;
  options.warmup_steps = 1;
  options.steps = steps;
  return options;
}

lowbit::StepTiming timing(const std::string& setting, double ms, double images, double peak_mb) {
  lowbit::StepTiming timing;
  timing.setting = setting;
  timing.median_ms = ms;
  timing.images_per_second = images;
  timing.peak_memory_mb = peak_mb;
  return timing;
}

}  // namespace

TEST_CASE("median of step times", "[bench]") {
  CHECK(lowbit::median({3.0, 1.0, 2.0}) == 2.0);
  CHECK(lowbit::median({4.0, 1.0, 3.0, 2.0}) == 2.5);
  CHECK(lowbit::median({}) == 0.0);
}

TEST_CASE("the step benchmark times full precision and the quantized setting", "[bench]") {
  auto components = lowbit::testing::load_components();
  auto options = tiny_bench(3);
  options.weight_bits = 4;
  options.activation_bits = 2;
  auto result = lowbit::bench_training_steps(components->registry, options);
  CHECK(result.full_precision.setting == "32W32A");
  CHECK(result.quantized.setting == "4W2A");
  for (const auto* timing : {&result.full_precision, &result.quantized}) {
    CHECK(timing->median_ms > 0);
    CHECK(timing->images_per_second == Approx(4 / (timing->median_ms / 1000.0)));
    CHECK(timing->peak_memory_mb > 1);
  }
  CHECK(result.overhead() == Approx(result.quantized.median_ms / result.full_precision.median_ms));
}

TEST_CASE("the step benchmark times KD through the kd plugin, and honours its options", "[bench]") {
  auto components = lowbit::testing::load_components();
  auto options = tiny_bench(2);
  options.distillation_strategy = "kd";
  options.kd_options = {{"loss", "both"}};
  options.quantizer_options = {{"kernels", "composite"}};
  options.performance.channels_last = true;
  auto result = lowbit::bench_training_steps(components->registry, options);
  CHECK(result.distilled.setting == "2W2A+KD");
  CHECK(result.distilled.median_ms > 0);

  options.kd_options = {{"loss", "all"}};
  CHECK_THROWS_WITH(lowbit::bench_training_steps(components->registry, options),
                    Catch::Contains("/kd_options/loss") && Catch::Contains("posterior"));
  options.distillation_strategy.clear();
  options.quantizer_options = {{"kernel", "fused"}};
  CHECK_THROWS_WITH(lowbit::bench_training_steps(components->registry, options),
                    Catch::Contains("kernel") && Catch::Contains("kernels"));
}

TEST_CASE("bench results print as a setup line, a table and the overhead", "[bench]") {
  lowbit::StepBenchOptions options;
  lowbit::StepBenchResult result;
  result.full_precision = timing("32W32A", 12.34, 324.1, 512.4);
  result.quantized = timing("2W2A", 24.68, 162.06, 600.6);
  std::ostringstream out;
  lowbit::print_step_bench(out, options, result, 2);
  CHECK(out.str() ==
        "resnet20 dorefa batch 128 input 3x32x32 on cpu (2 threads), median of 20 steps\n"
        "setting       ms/step      img/s      peak MB\n"
        "32W32A           12.3        324          512\n"
        "2W2A             24.7        162          601\n"
        "quantizer overhead (quantized / full-precision step time): 2.00\n");
}

TEST_CASE("bench results name the layout and autocast, and add the KD row when timed", "[bench]") {
  auto options = tiny_bench(5);
  options.performance.channels_last = true;
  options.performance.mixed_precision = lowbit::MixedPrecision::bf16;
  lowbit::StepBenchResult result;
  result.full_precision = timing("32W32A", 10.0, 400.0, 100.0);
  result.quantized = timing("2W2A", 15.0, 266.7, 120.0);
  result.distilled = timing("2W2A+KD", 37.0, 108.1, 700.2);
  std::ostringstream out;
  lowbit::print_step_bench(out, options, result, 4);
  const auto text = out.str();
  CHECK_THAT(text, Catch::StartsWith("resnet20 dorefa batch 4 input 1x8x8 on cpu (4 threads, "
                                     "channels-last, bf16 autocast), median of 5 steps\n"));
  CHECK_THAT(text, Catch::Contains("\n2W2A+KD          37.0        108          700\n"));
  CHECK_THAT(text, Catch::EndsWith("step time): 1.50\n"));
}
