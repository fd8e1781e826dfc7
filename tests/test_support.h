#pragma once
// Shared by the core tests: a registry with the built-in models and the in-tree plugins, and
// small experiments on synthetic data that train in seconds.

#include <lowbit/models/zoo.h>
#include <lowbit/plugins/plugin_loader.h>
#include <lowbit/sdk/registry.h>

#include <nlohmann/json.hpp>

#include <boost/filesystem.hpp>

#include <memory>
#include <string>

namespace lowbit::testing {

struct Components {
  Registry registry;
  PluginLoader plugins{registry};
};

/// Built-in models plus the plugins this build made.
inline std::unique_ptr<Components> load_components() {
  auto components = std::make_unique<Components>();
  models::register_builtin_models(components->registry);
  auto failures = components->plugins.load_directory(LOWBIT_PLUGIN_BUILD_DIR);
  if (!failures.empty()) throw std::runtime_error(failures.front().reason);
  return components;
}

/// A two-point matrix (FP and DoReFa 2W2A) on a tiny synthetic set, a few steps per epoch.
inline nlohmann::json tiny_experiment(const std::string& name = "tiny") {
  auto spec = nlohmann::json::parse(R"({
    "name": "tiny",
    "data": {"name": "synthetic", "train": 96, "test": 48, "classes": 4, "image_size": 8,
             "augment": {"crop_padding": 1, "horizontal_flip": true}},
    "models": ["resnet20"],
    "quantizers": ["dorefa"],
    "precisions": ["32W32A", "2W2A"],
    "trials": 2,
    "seed": 11,
    "device": "cpu",
    "training": {"epochs": 2, "batch_size": 32, "max_steps_per_epoch": 2,
                 "optimizer": {"lr": 0.05}}
  })");
  spec["name"] = name;
  return spec;
}

/// A fresh folder under the system's temporary folder, removed when the object dies.
class TemporaryFolder {
 public:
  TemporaryFolder()
      : path_(boost::filesystem::temp_directory_path() /
              boost::filesystem::unique_path("lowbit-test-%%%%-%%%%")) {
    boost::filesystem::create_directories(path_);
  }
  ~TemporaryFolder() {
    boost::system::error_code ignored;
    boost::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  boost::filesystem::path path_;
};

}  // namespace lowbit::testing
