#include <lowbit/experiment/experiment.h>
#include <lowbit/sdk/error.h>

#include "test_support.h"

#include <catch2/catch.hpp>

#include <fstream>

using Catch::Matchers::Contains;
using lowbit::ConfigError;

namespace {

using lowbit::testing::shared_registry;

/// The ConfigError a spec raises, so tests can check where it points and what it allows.
ConfigError error_of(const nlohmann::json& spec) {
  try {
    lowbit::parse_experiment(spec, "exp.json", shared_registry());
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("the spec should have been rejected: " << spec.dump());
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("the matrix is the cartesian product of its axes", "[experiment]") {
  auto spec = lowbit::testing::tiny_experiment();
  spec["models"] = {"resnet20", "preresnet20"};
  spec["precisions"] = {"32W32A", "4W4A", "2W2A"};
  spec["strategies"] = nlohmann::json::array({nlohmann::json::array()});
  spec["init"] = "scratch";
  auto experiment = lowbit::parse_experiment(spec, "exp.json", shared_registry());
  REQUIRE(experiment.runs.size() == 6);
  CHECK(experiment.trials == 2);
  CHECK(experiment.runs[0].model == "resnet20");
  CHECK(experiment.runs[2].record.weight_bits == 2);
  CHECK(experiment.runs[3].model == "preresnet20");
  CHECK(experiment.runs[1].record.method == "dorefa");
  CHECK(lowbit::precision_label(4, 2) == "4W2A");
  // Starting from full precision, the 32W32A runs the others start from come first.
  spec.erase("init");
  experiment = lowbit::parse_experiment(spec, "exp.json", shared_registry());
  REQUIRE(experiment.runs.size() == 6);
  CHECK(experiment.runs[0].model == "resnet20");
  CHECK(experiment.runs[1].model == "preresnet20");
  CHECK(experiment.runs[1].record.weight_bits == 32);
  CHECK(experiment.runs[2].record.weight_bits == 4);
  CHECK(experiment.runs[5].model == "preresnet20");
}

TEST_CASE("a run's hash depends on what defines it and on nothing else", "[experiment]") {
  auto spec = lowbit::testing::tiny_experiment();
  auto base = lowbit::parse_experiment(spec, "exp.json", shared_registry());
  auto same = lowbit::parse_experiment(spec, "elsewhere.json", shared_registry());
  CHECK(base.runs[0].record.hash == same.runs[0].record.hash);
  CHECK(base.runs[0].record.hash != base.runs[1].record.hash);

  auto more_trials = spec;
  more_trials["trials"] = 5;  // more trials extend the same runs
  more_trials["device"] = "auto";
  CHECK(lowbit::parse_experiment(more_trials, "exp.json", shared_registry()).runs[0].record.hash ==
        base.runs[0].record.hash);

  auto other_lr = spec;
  other_lr["training"]["optimizer"]["lr"] = 0.01;
  CHECK(lowbit::parse_experiment(other_lr, "exp.json", shared_registry()).runs[0].record.hash !=
        base.runs[0].record.hash);

  // Speed settings: off is what runs had before they existed (same hash); layout and precision
  // change the arithmetic (another run); cuDNN's algorithm search does not.
  auto speed_off = spec;
  speed_off["training"]["channels_last"] = false;
  speed_off["training"]["mixed_precision"] = "off";
  speed_off["training"]["cudnn_benchmark"] = true;
  CHECK(lowbit::parse_experiment(speed_off, "exp.json", shared_registry()).runs[0].record.hash ==
        base.runs[0].record.hash);

  // Curve points on part of the test split: the same training and the same result.
  auto part_curves = spec;
  part_curves["training"]["curve_test_images"] = 1000;
  auto parsed_part = lowbit::parse_experiment(part_curves, "exp.json", shared_registry());
  CHECK(parsed_part.training.curve_test_images == 1000);
  CHECK(parsed_part.runs[0].record.hash == base.runs[0].record.hash);
  part_curves["training"]["curve_test_images"] = -1;
  CHECK(error_of(part_curves).pointer() == "/training/curve_test_images");
  for (const auto& [key, value] : {std::pair<std::string, nlohmann::json>{"channels_last", true},
                                   {"mixed_precision", "bf16"}}) {
    auto changed = spec;
    changed["training"][key] = value;
    auto parsed = lowbit::parse_experiment(changed, "exp.json", shared_registry());
    CHECK(parsed.runs[0].record.hash != base.runs[0].record.hash);
    CHECK(parsed.runs[0].record.config["training"][key] == value);
  }
}

TEST_CASE("unknown fields are errors naming the pointer and the allowed fields", "[experiment]") {
  auto spec = lowbit::testing::tiny_experiment();
  spec["training"]["optimiser"] = {{"lr", 0.1}};
  auto error = error_of(spec);
  CHECK(error.file() == "exp.json");
  CHECK(error.pointer() == "/training/optimiser");
  CHECK_THAT(error.allowed(), Contains("optimizer"));
  CHECK_THAT(std::string(error.what()), Contains("exp.json: /training/optimiser: unknown field"));
}

TEST_CASE("unknown components list the registered ones", "[experiment]") {
  auto spec = lowbit::testing::tiny_experiment();
  spec["quantizers"] = {"dorefa", "lsq"};
  auto error = error_of(spec);
  CHECK(error.pointer() == "/quantizers/1");
  CHECK_THAT(error.problem(), Contains("unknown quantizer \"lsq\""));
  CHECK_THAT(error.allowed(), Contains("dorefa"));

  spec = lowbit::testing::tiny_experiment();
  spec["models"] = {{{"name", "resnet21"}}};
  error = error_of(spec);
  CHECK(error.pointer() == "/models/0/name");
  CHECK_THAT(error.allowed(), Contains("resnet20"));
  CHECK_THAT(error.allowed(), Contains("preresnet20"));
}

TEST_CASE("bad values name the field and the allowed values", "[experiment]") {
  auto spec = lowbit::testing::tiny_experiment();
  spec["precisions"] = {"2W2A", "2W"};
  auto error = error_of(spec);
  CHECK(error.pointer() == "/precisions/1");
  CHECK_THAT(error.allowed(), Contains("2W2A"));

  spec = lowbit::testing::tiny_experiment();
  spec["precisions"] = {"64W2A"};
  CHECK(error_of(spec).pointer() == "/precisions/0");

  spec = lowbit::testing::tiny_experiment();
  spec["training"]["schedule"] = {{"name", "linear"}};
  error = error_of(spec);
  CHECK(error.pointer() == "/training/schedule/name");
  CHECK(error.allowed() == "cosine, multistep");

  spec = lowbit::testing::tiny_experiment();
  spec["training"]["epochs"] = 0;
  error = error_of(spec);
  CHECK(error.pointer() == "/training/epochs");
  CHECK_THAT(error.allowed(), Contains("1 to"));

  spec = lowbit::testing::tiny_experiment();
  spec["training"]["batch_size"] = "128";
  CHECK_THAT(error_of(spec).problem(), Contains("expected an integer"));

  spec = lowbit::testing::tiny_experiment();
  spec["training"]["mixed_precision"] = "fp16";
  error = error_of(spec);
  CHECK(error.pointer() == "/training/mixed_precision");
  CHECK(error.allowed() == "off, bf16");

  spec = lowbit::testing::tiny_experiment();
  spec["device"] = "tpu";
  CHECK(error_of(spec).allowed() == "auto, cpu, cuda");

  spec = lowbit::testing::tiny_experiment();
  spec.erase("models");
  error = error_of(spec);
  CHECK(error.pointer() == "/models");
  CHECK_THAT(error.problem(), Contains("required"));
}

TEST_CASE("quantizer options are validated by the plugin before anything runs", "[experiment]") {
  auto spec = lowbit::testing::tiny_experiment();
  spec["quantizers"] = {{{"name", "dorefa"}, {"options", {{"k1_weights", "signed"}}}}};
  auto error = error_of(spec);
  CHECK(error.pointer() == "/quantizers/0/options/k1_weights");
  CHECK_THAT(error.allowed(), Contains("authors"));

  spec["quantizers"] = {{{"name", "dorefa"}, {"options", {{"k1_weight", "authors"}}}}};
  error = error_of(spec);
  CHECK(error.pointer() == "/quantizers/0/options/k1_weight");
  CHECK_THAT(error.problem(), Contains("unknown field"));
}

TEST_CASE("missing files and broken JSON are errors naming the file", "[experiment]") {
  lowbit::testing::TemporaryFolder folder;
  CHECK_THROWS_WITH(lowbit::load_experiment(folder.file("absent.json"), shared_registry()),
                    Contains("absent.json") && Contains("cannot open"));
  std::ofstream(folder.file("broken.json")) << "{\"name\": \"x\",";
  CHECK_THROWS_WITH(lowbit::load_experiment(folder.file("broken.json"), shared_registry()),
                    Contains("broken.json") && Contains("not valid JSON"));
}

TEST_CASE("every shipped experiment file is valid", "[experiment]") {
  for (const auto& entry :
       boost::filesystem::directory_iterator(std::string(LOWBIT_SOURCE_DIR) + "/experiments")) {
    if (entry.path().extension() != ".json") continue;
    INFO(entry.path().string());
    auto experiment = lowbit::load_experiment(entry.path().string(), shared_registry());
    CHECK_FALSE(experiment.runs.empty());
  }
}

TEST_CASE("a profile is a merge patch over the file, chosen by name", "[experiment][profiles]") {
  auto spec = lowbit::testing::tiny_experiment("scaled");
  spec["profiles"] = {{"paper", {{"trials", 3}, {"training", {{"epochs", 30}}}}},
                      {"cpu", {{"description", "small"}, {"data", {{"test", 24}}}}}};
  const auto paper = lowbit::select_profile(spec, "exp.json", "paper");
  CHECK(paper["name"] == "scaled-paper");
  CHECK_FALSE(paper.contains("profiles"));
  CHECK(paper["trials"] == 3);
  // Objects merge key by key: the rest of "training" stays.
  CHECK(paper["training"]["epochs"] == 30);
  CHECK(paper["training"]["batch_size"] == 32);
  const auto cpu = lowbit::select_profile(spec, "exp.json", "cpu");
  CHECK(cpu["data"]["test"] == 24);
  CHECK(cpu["data"]["train"] == 96);
  CHECK(cpu["trials"] == 2);
  CHECK(lowbit::profile_names(spec) == std::vector<std::string>{"cpu", "paper"});

  // The two scales are two experiments whose runs differ where the scales do.
  const auto small = lowbit::parse_experiment(cpu, "exp.json", shared_registry());
  const auto large = lowbit::parse_experiment(paper, "exp.json", shared_registry());
  CHECK(small.name == "scaled-cpu");
  CHECK(small.runs[0].record.hash != large.runs[0].record.hash);
  // Without profiles the file is as it was.
  auto plain = lowbit::testing::tiny_experiment();
  CHECK(lowbit::select_profile(plain, "exp.json", "") == plain);
}

TEST_CASE("a missing, unknown or malformed profile names the file and the profiles there",
          "[experiment][profiles]") {
  auto spec = lowbit::testing::tiny_experiment();
  spec["profiles"] = {{"paper", nlohmann::json::object()}, {"cpu", nlohmann::json::object()}};
  auto error_for = [](const nlohmann::json& file, const std::string& profile) {
    try {
      lowbit::select_profile(file, "exp.json", profile);
    } catch (const ConfigError& e) {
      return e;
    }
    FAIL("should have been rejected: " << file.dump() << " with profile " << profile);
    throw std::logic_error("unreachable");
  };
  auto none = error_for(spec, "");
  CHECK(none.pointer() == "/profiles");
  CHECK_THAT(none.problem(), Contains("--profile"));
  CHECK(none.allowed() == "cpu, paper");
  auto unknown = error_for(spec, "gpu");
  CHECK_THAT(unknown.problem(), Contains("no profile \"gpu\""));
  CHECK(unknown.allowed() == "cpu, paper");
  CHECK_THAT(error_for(lowbit::testing::tiny_experiment(), "cpu").problem(),
             Contains("has no \"profiles\""));

  auto renaming = spec;
  renaming["profiles"]["cpu"] = {{"name", "other"}};
  CHECK(error_for(renaming, "cpu").pointer() == "/profiles/cpu/name");
  auto not_object = spec;
  not_object["profiles"]["cpu"] = 3;
  CHECK(error_for(not_object, "cpu").pointer() == "/profiles/cpu");
  auto bad_name = spec;
  bad_name["profiles"]["a b"] = nlohmann::json::object();
  CHECK_THAT(error_for(bad_name, "cpu").problem(), Contains("bad profile name"));

  // A bad value inside a profile is reported against the file with that profile.
  lowbit::testing::TemporaryFolder folder;
  auto bad_value = spec;
  bad_value["profiles"]["cpu"] = {{"trials", 0}};
  std::ofstream(folder.file("scaled.json")) << bad_value.dump();
  CHECK_THROWS_WITH(lowbit::load_experiment(folder.file("scaled.json"), shared_registry(), "cpu"),
                    Contains("scaled.json (profile cpu)") && Contains("/trials"));
  const auto loaded =
      lowbit::load_experiment(folder.file("scaled.json"), shared_registry(), "paper");
  CHECK(loaded.profile == "paper");
  CHECK(loaded.file == folder.file("scaled.json"));
  CHECK_FALSE(loaded.spec.contains("profiles"));
}

TEST_CASE("a starred precision quantizes the first and last layers beside the plain row",
          "[experiment]") {
  auto spec = lowbit::testing::tiny_experiment();
  spec["precisions"] = {"32W32A", "2W2A", "2W2A*"};
  const auto experiment = lowbit::parse_experiment(spec, "exp.json", shared_registry());
  REQUIRE(experiment.runs.size() == 3);
  CHECK_FALSE(experiment.runs[1].precision.quantize_all);
  CHECK(experiment.runs[2].precision.quantize_all);
  CHECK(experiment.runs[2].record.method == "dorefa*");
  CHECK(experiment.runs[1].record.hash != experiment.runs[2].record.hash);
  // Both start from the one 32W32A run.
  CHECK(experiment.runs[2].full_precision_source == 0);

  spec["precisions"] = {"32W32A*"};
  CHECK_THAT(error_of(spec).problem(), Contains("quantizes nothing"));
  spec["precisions"] = {"2W2A", "2W2A"};
  CHECK(error_of(spec).pointer() == "/precisions/1");
}

TEST_CASE("a model or quantizer may carry precisions of its own", "[experiment]") {
  auto spec = lowbit::testing::tiny_experiment();
  // A deeper KD teacher is trained at 32W32A only; the student has every row.
  spec["models"] = {"resnet20", {{"name", "resnet32"}, {"precisions", {"32W32A"}}}};
  spec["quantizers"] = {"dorefa"};
  auto experiment = lowbit::parse_experiment(spec, "exp.json", shared_registry());
  REQUIRE(experiment.runs.size() == 3);
  CHECK(experiment.runs[2].model == "resnet32");
  CHECK(experiment.runs[2].record.weight_bits == 32);
  for (const auto& run : experiment.runs) {
    CHECK_FALSE((run.model == "resnet32" && run.record.weight_bits == 2));
  }
  // Quantizers with their own rows, beside the experiment's (32W32A) for the others; a model
  // and a quantizer that both have rows meet where their rows agree.
  spec["models"] = {"resnet20"};
  spec["precisions"] = {"32W32A"};
  spec["quantizers"] = {{{"name", "dorefa"}, {"precisions", {"32W32A", "2W2A"}}},
                        {{"name", "lqnet"}, {"precisions", {"32W32A", "3W3A"}}}};
  experiment = lowbit::parse_experiment(spec, "exp.json", shared_registry());
  REQUIRE(experiment.runs.size() == 4);
  CHECK(experiment.runs[1].record.quantizer == "lqnet");
  CHECK(experiment.runs[1].record.weight_bits == 32);
  CHECK(experiment.runs[2].record.quantizer == "dorefa");
  CHECK(experiment.runs[2].record.weight_bits == 2);
  CHECK(experiment.runs[3].record.quantizer == "lqnet");
  CHECK(experiment.runs[3].record.weight_bits == 3);
  // Each quantized run starts from its own quantizer's 32W32A run.
  CHECK(experiment.runs[2].full_precision_source == 0);
  CHECK(experiment.runs[3].full_precision_source == 1);
  spec["models"] = {{{"name", "resnet20"}, {"precisions", {"32W32A", "3W3A"}}}};
  experiment = lowbit::parse_experiment(spec, "exp.json", shared_registry());
  REQUIRE(experiment.runs.size() == 3);
  CHECK(experiment.runs[2].record.quantizer == "lqnet");
  CHECK(experiment.runs[2].record.weight_bits == 3);

  spec["models"] = {{{"name", "resnet20"}, {"precisions", {"9W9A9"}}}};
  CHECK(error_of(spec).pointer() == "/models/0/precisions/0");
}
