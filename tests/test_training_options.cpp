// The training vocabulary: schedule and device names both ways (the names are what experiment
// files, run hashes and `--device` use), and the SGD the trainer and `lowbit bench` share.

#include <lowbit/experiment/experiment.h>
#include <lowbit/training/device.h>
#include <lowbit/training/optimizer.h>
#include <lowbit/training/options.h>

#include "test_support.h"

#include <catch2/catch.hpp>

namespace {

using Catch::Matchers::Contains;

const torch::optim::SGDOptions& sgd_options(const torch::optim::SGD& optimizer) {
  return static_cast<const torch::optim::SGDOptions&>(optimizer.param_groups().at(0).options());
}

}  // namespace

TEST_CASE("schedule names read back as the schedule they name", "[options]") {
  CHECK(lowbit::to_string(lowbit::ScheduleKind::cosine) == "cosine");
  CHECK(lowbit::to_string(lowbit::ScheduleKind::multistep) == "multistep");
  REQUIRE(lowbit::schedule_kinds().size() == 2);
  for (const auto& [name, kind] : lowbit::schedule_kinds()) {
    CHECK(lowbit::parse_schedule_kind(name) == kind);
    CHECK(lowbit::to_string(kind) == name);
  }
  CHECK_THROWS_WITH(lowbit::parse_schedule_kind("linear"),
                    Contains("\"linear\"") && Contains("allowed: cosine, multistep"));
  CHECK(lowbit::ScheduleOptions{}.kind == lowbit::ScheduleKind::cosine);
}

TEST_CASE("device names read back as the device choice they name", "[options]") {
  CHECK(lowbit::to_string(lowbit::DeviceChoice::automatic) == "auto");
  CHECK(lowbit::to_string(lowbit::DeviceChoice::cpu) == "cpu");
  CHECK(lowbit::to_string(lowbit::DeviceChoice::cuda) == "cuda");
  REQUIRE(lowbit::device_choices().size() == 3);
  for (const auto& [name, choice] : lowbit::device_choices()) {
    CHECK(lowbit::parse_device_choice(name) == choice);
    CHECK(lowbit::to_string(choice) == name);
  }
  // The message `lowbit` has always given for a device it does not know.
  CHECK_THROWS_WITH(lowbit::resolve_device("tpu"),
                    Catch::Equals("unknown device \"tpu\" (allowed: auto, cpu, cuda)"));
  CHECK(lowbit::resolve_device("cpu") == torch::Device(torch::kCPU));
  CHECK(lowbit::resolve_device(lowbit::DeviceChoice::automatic) ==
        (torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU)));
}

TEST_CASE("an experiment's device and schedule are read into their enums", "[options]") {
  auto& registry = lowbit::testing::shared_components().registry;
  auto spec = lowbit::testing::tiny_experiment();
  CHECK(lowbit::parse_experiment(spec, "tiny.json", registry).device == lowbit::DeviceChoice::cpu);
  CHECK(lowbit::parse_experiment(spec, "tiny.json", registry).training.schedule.kind ==
        lowbit::ScheduleKind::cosine);
  spec.erase("device");
  spec["training"]["schedule"] = {{"name", "multistep"}, {"milestones", {1}}};
  const auto experiment = lowbit::parse_experiment(spec, "tiny.json", registry);
  CHECK(experiment.device == lowbit::DeviceChoice::automatic);
  CHECK(experiment.training.schedule.kind == lowbit::ScheduleKind::multistep);
  // The run's identity holds the schedule by its name, as before the enum.
  CHECK(experiment.runs.at(0).record.config.dump().find("\"name\":\"multistep\"") !=
        std::string::npos);
}

TEST_CASE("make_sgd builds SGD with the options' momentum, Nesterov and weight decay",
          "[options]") {
  auto weight = torch::ones({3}, torch::requires_grad());
  lowbit::OptimizerOptions options;
  options.learning_rate = 0.5;  // the run's rate; the stage's is what counts
  options.momentum = 0.8;
  options.nesterov = true;
  options.weight_decay = 0.01;
  auto optimizer = lowbit::make_sgd(options, {weight}, 0.25);
  REQUIRE(optimizer.param_groups().size() == 1);
  CHECK(optimizer.param_groups()[0].params().size() == 1);
  const auto& built = sgd_options(optimizer);
  CHECK(built.lr() == 0.25);
  CHECK(built.momentum() == 0.8);
  CHECK(built.nesterov());
  CHECK(built.weight_decay() == 0.01);
  CHECK(built.dampening() == 0.0);

  // The defaults are the momentum and decay `lowbit bench` always stepped with.
  auto bench = lowbit::make_sgd(lowbit::OptimizerOptions{}, {weight}, 0.01);
  CHECK(sgd_options(bench).momentum() == 0.9);
  CHECK_FALSE(sgd_options(bench).nesterov());
  CHECK(sgd_options(bench).weight_decay() == 1e-4);

  // One step updates as the hand-built optimizer does.
  auto twin = torch::ones({3}, torch::requires_grad());
  torch::optim::SGD reference(
      {twin}, torch::optim::SGDOptions(0.25).momentum(0.8).nesterov(true).weight_decay(0.01));
  optimizer.zero_grad();
  reference.zero_grad();
  (weight * torch::tensor({1.0f, 2.0f, 3.0f})).sum().backward();
  (twin * torch::tensor({1.0f, 2.0f, 3.0f})).sum().backward();
  optimizer.step();
  reference.step();
  CHECK(torch::equal(weight, twin));
}
