#include <lowbit/bench/step_bench.h>

#include "test_support.h"

#include <catch2/catch.hpp>

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

TEST_CASE("the step benchmark times KD through the kd plugin, and honours its options",
          "[bench]") {
  auto components = lowbit::testing::load_components();
  auto options = tiny_bench(2);
  options.kd = true;
  options.kd_options = {{"loss", "both"}};
  options.quantizer_options = {{"kernels", "composite"}};
  options.performance.channels_last = true;
  auto result = lowbit::bench_training_steps(components->registry, options);
  CHECK(result.distilled.setting == "2W2A+KD");
  CHECK(result.distilled.median_ms > 0);

  options.kd_options = {{"loss", "all"}};
  CHECK_THROWS_WITH(lowbit::bench_training_steps(components->registry, options),
                    Catch::Contains("/kd_options/loss") && Catch::Contains("posterior"));
  options.kd = false;
  options.quantizer_options = {{"kernel", "fused"}};
  CHECK_THROWS_WITH(lowbit::bench_training_steps(components->registry, options),
                    Catch::Contains("kernel") && Catch::Contains("kernels"));
}
