#pragma once
// Helpers for a plugin's own Catch2 test (lowbit_add_plugin_test): the test binary has the
// plugin's objects linked in, so the plugin's entry point is right there, as the harness sees it
// after loading. Installed with the SDK, for plugins outside the lowbit tree too.

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/quantizer.h>
#include <lowbit/sdk/registry.h>
#include <lowbit/sdk/testing/skip.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

extern "C" const lowbit_plugin_info* lowbit_plugin_entry();

namespace lowbit::testing {

/// The spec's vectors are given to 1e-5.
constexpr double kTolerance = 1e-5;

/// A JSON file of test data (e.g. a spec's golden values); throws naming the file when it cannot be
/// read.
inline nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(in);
}

/// A float32 tensor from nested JSON lists of numbers, in their shape.
inline torch::Tensor tensor_from_json(const nlohmann::json& node) {
  std::vector<float> values;
  std::vector<int64_t> shape;
  std::function<void(const nlohmann::json&, size_t)> flatten = [&](const nlohmann::json& item,
                                                                   size_t depth) {
    if (!item.is_array()) {
      values.push_back(item.get<float>());
      return;
    }
    if (shape.size() == depth) shape.push_back(static_cast<int64_t>(item.size()));
    for (const auto& child : item) flatten(child, depth + 1);
  };
  flatten(node, 0);
  return torch::tensor(values).reshape(shape);
}

/// A float32 tensor from literal values.
inline torch::Tensor values(std::vector<float> list) { return torch::tensor(list); }

/// Same shape, values within `tolerance`; prints both tensors on failure.
inline void check_close(const torch::Tensor& actual, const torch::Tensor& expected,
                        double tolerance = kTolerance) {
  INFO("actual   " << actual);
  INFO("expected " << expected);
  REQUIRE(actual.sizes() == expected.sizes());
  CHECK(torch::allclose(actual.to(torch::kFloat), expected.to(torch::kFloat), 0.0, tolerance));
}

/// What the plugin registers through its entry point (origin "test").
inline Registry& plugin_registry() {
  static Registry loaded = [] {
    Registry registry;
    registry.set_origin("test");
    lowbit_plugin_entry()->register_components(registry);
    return registry;
  }();
  return loaded;
}

/// The plugin's quantizer `name` made from `options` through its entry point, as the harness
/// does; options the factory did not read are errors.
inline std::shared_ptr<Quantizer> make_plugin_quantizer(const std::string& name,
                                                        const nlohmann::json& options) {
  const nlohmann::json given = options.is_null() ? nlohmann::json::object() : options;
  JsonReader reader(given, "test.json", "/quantizers/0/options");
  std::shared_ptr<Quantizer> quantizer = plugin_registry().quantizer(name)(reader);
  reader.reject_unknown_keys();
  return quantizer;
}

}  // namespace lowbit::testing
