// `lowbit export`: a trained trial's tensors, with integer codes for its quantized weights,
// read back in C++ (torch::pickle_load) and, where Debian's python3-torch is there, in Python.
#include <lowbit/export/export.h>
#include <lowbit/layers/quantized_layers.h>

#include "test_support.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sys/wait.h>

using Catch::Matchers::Contains;

namespace {

using lowbit::testing::lowbit_cli;
using lowbit::testing::run_shell;

c10::impl::GenericDict read_export(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE_FALSE(bytes.empty());
  return torch::pickle_load(bytes).toGenericDict();
}

/// One run of the tiny experiment (2W2A DoReFa unless told), one trial.
std::string trained_tiny_database(const lowbit::testing::TemporaryFolder& folder,
                                  const std::string& quantizer = "dorefa",
                                  const std::string& precision = "2W2A") {
  auto spec = lowbit::testing::tiny_experiment("export");
  spec["quantizers"] = {quantizer};
  spec["precisions"] = {precision};
  spec["trials"] = 1;
  const auto path = folder.file("export.json");
  std::ofstream(path) << spec.dump(2);
  const auto db = folder.file("results.db");
  auto run = lowbit_cli(fmt::format("run '{}' --db '{}' --threads 1", path, db));
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  return db;
}

/// `lowbit export` of trial 0 of the ResNet-20 run at `precision` into `output`, read back.
c10::impl::GenericDict exported_trial(const std::string& db, const std::string& precision,
                                      const std::string& output) {
  auto exported =
      lowbit_cli(fmt::format("export --db '{}' --model resnet20 --precision {} "
                             "--trial 0 -o '{}'",
                             db, precision, output));
  INFO(exported.output);
  REQUIRE(exported.exit_code == 0);
  return read_export(output);
}

}  // namespace

TEST_CASE("uniform codes: DoReFa's grid, an offset grid, and values on no grid", "[export]") {
  torch::Tensor codes;
  double scale = 0, offset = 0;
  // 2-bit DoReFa levels -1, -1/3, 1/3, 1 (a layer need not use them all).
  auto dorefa = torch::tensor({-1.0f / 3, 1.0f / 3, 1.0f, 1.0f / 3});
  REQUIRE(lowbit::uniform_codes(dorefa, 2, codes, scale, offset));
  CHECK(codes.scalar_type() == torch::kUInt8);
  CHECK(codes.to(torch::kLong).equal(torch::tensor({1, 2, 3, 2}, torch::kLong)));
  CHECK(scale == Approx(2.0 / 3));
  CHECK(offset == -1.0);
  // 1-bit DoReFa: sign times the mean magnitude.
  auto binary = torch::tensor({-0.25f, 0.25f, 0.25f});
  REQUIRE(lowbit::uniform_codes(binary, 1, codes, scale, offset));
  CHECK(codes.to(torch::kLong).equal(torch::tensor({0, 1, 1}, torch::kLong)));
  CHECK(codes.to(torch::kDouble).mul(scale).add(offset).to(torch::kFloat).equal(binary));
  // Too many distinct values for 2 bits.
  CHECK_FALSE(lowbit::uniform_codes(torch::tensor({0.0f, 0.1f, 0.2f, 0.3f, 0.4f}), 2, codes, scale,
                                    offset));
}

TEST_CASE("export writes a trained trial's tensors and codes that reproduce its quantized weights",
          "[export][e2e][python]") {
  lowbit::testing::TemporaryFolder folder;
  const auto db = trained_tiny_database(folder);
  const auto output = folder.file("trial0.pt");
  auto dict = exported_trial(db, "2W2A", output);
  CHECK_THAT(dict.at("__format__").toStringRef(), Contains("weight_codes"));
  auto run = nlohmann::json::parse(dict.at("__run__").toStringRef());
  CHECK(run.at("config").at("model") == "resnet20");
  CHECK(run.at("trial") == 0);

  // Full-precision layers are there as trained, without codes.
  CHECK(dict.contains("conv1.weight"));
  CHECK_FALSE(dict.contains("conv1.weight_codes"));
  CHECK(dict.contains("fc.bias"));
  CHECK(dict.contains("bn1.running_mean"));

  int quantized_layers = 0;
  for (const auto& entry : dict) {
    const auto& key = entry.key().toStringRef();
    const std::string suffix = ".weight_codes";
    if (key.size() <= suffix.size() ||
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const auto layer = key.substr(0, key.size() - suffix.size());
    INFO(layer);
    ++quantized_layers;
    auto codes = entry.value().toTensor();
    auto quantized = dict.at(layer + ".weight_quantized").toTensor();
    const double scale = dict.at(layer + ".weight_scale").toTensor().item<double>();
    const double offset = dict.at(layer + ".weight_offset").toTensor().item<double>();
    CHECK(dict.at(layer + ".weight_bits").toTensor().item<int64_t>() == 2);
    CHECK(codes.scalar_type() == torch::kUInt8);
    CHECK(codes.max().item<int64_t>() <= 3);
    CHECK(scale == Approx(2.0 / 3));
    CHECK(offset == -1.0);
    auto rebuilt = codes.to(torch::kDouble).mul(scale).add(offset);
    CHECK(rebuilt.sub(quantized.to(torch::kDouble)).abs().max().item<double>() < 1e-6);
    // And the quantized weights are DoReFa's function of the trained weights.
    auto weight = dict.at(layer + ".weight").toTensor();
    auto t = weight.tanh();
    // (the plugin's operation order, so float32 rounding picks the same bins)
    auto expected = 2 * (torch::round((t / t.abs().max() * 0.5 + 0.5) * 3) / 3) - 1;
    CHECK(expected.sub(quantized).abs().max().item<float>() < 1e-5);
  }
  CHECK(quantized_layers == 18 + 2);  // ResNet-20's block convs and projection shortcuts

  SECTION("from Python") {
    const std::string python = LOWBIT_PYTHON3;
    auto probe = run_shell(fmt::format("'{}' -c 'import torch'", python));
    if (python.empty() || probe.exit_code != 0) {
      LOWBIT_SKIP("no python3 with torch (Debian: python3-torch)");
    }
    const auto script = folder.file("read.py");
    std::ofstream(script) << R"py(
import sys, torch
d = torch.load(sys.argv[1])
codes = [k[:-len(".weight_codes")] for k in d if k.endswith(".weight_codes")]
worst = max(float((d[l + ".weight_codes"].double() * d[l + ".weight_scale"] + d[l + ".weight_offset"]
                  - d[l + ".weight_quantized"].double()).abs().max()) for l in codes)
print("layers", len(codes), "worst", worst, "fc", tuple(d["fc.weight"].shape))
)py";
    auto read = run_shell(fmt::format("'{}' '{}' '{}'", python, script, output));
    INFO(read.output);
    REQUIRE(read.exit_code == 0);
    CHECK_THAT(read.output, Contains("layers 20 worst"));
    CHECK_THAT(read.output, Contains("fc (4, 64)"));
    const auto worst = std::stod(read.output.substr(read.output.find("worst") + 6));
    CHECK(worst < 1e-6);
  }
}

TEST_CASE("export rebuilds a run with its quantizer's structure (Bi-Real units)", "[export][e2e]") {
  lowbit::testing::TemporaryFolder folder;
  const auto db = trained_tiny_database(folder, "bireal", "1W1A");
  auto dict = exported_trial(db, "1W1A", folder.file("bireal.pt"));
  // Each block became two units, each a binary conv with its BN and a real shortcut.
  CHECK(dict.contains("layer1.0.unit1.conv.weight"));
  CHECK(dict.contains("layer1.0.unit2.bn.running_var"));
  CHECK_FALSE(dict.contains("layer1.0.conv1.weight"));
}

TEST_CASE("export errors name what is missing", "[export][e2e]") {
  lowbit::testing::TemporaryFolder folder;
  const auto db = trained_tiny_database(folder);
  auto no_match =
      lowbit_cli(fmt::format("export --db '{}' --model resnet56 -o '{}'", db, folder.file("x.pt")));
  CHECK(no_match.exit_code != 0);
  CHECK_THAT(no_match.output, Contains("no run matches") && Contains("resnet20"));
  auto no_trial = lowbit_cli(
      fmt::format("export --db '{}' --model resnet20 --trial 3 -o '{}'", db, folder.file("x.pt")));
  CHECK(no_trial.exit_code != 0);
  CHECK_THAT(no_trial.output, Contains("trial 3"));
}
