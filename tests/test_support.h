#pragma once
// Shared by the core tests: a registry with the built-in models and the in-tree plugins, and
// small experiments on synthetic data that train in seconds.

#include <lowbit/data/dataset.h>
#include <lowbit/models/zoo.h>
#include <lowbit/plugins/plugin_loader.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/registry.h>
#include <lowbit/sdk/testing/skip.h>

#include <nlohmann/json.hpp>

#include <boost/filesystem.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <sqlite3.h>
#include <zlib.h>

#include <sys/wait.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

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

/// One set of components for the whole test process (plugins stay loaded anyway).
inline Components& shared_components() {
  static const auto loaded = load_components();
  return *loaded;
}

inline const Registry& shared_registry() { return shared_components().registry; }

inline int64_t parameter_count(torch::nn::Module& module) {
  int64_t count = 0;
  for (const auto& parameter : module.parameters()) count += parameter.numel();
  return count;
}

/// A zoo model built through `layers` (3-channel 32x32 images, 10 classes unless told).
inline std::shared_ptr<NetworkImpl> build_model(const std::string& model, LayerFactory& layers,
                                                ModelSpec spec = {3, 10, 32}) {
  return shared_registry().model(model)(spec, layers);
}

/// A quantizer plugin with its default options.
inline std::shared_ptr<const Quantizer> default_quantizer(const std::string& name) {
  nlohmann::json options = nlohmann::json::object();
  return shared_registry().quantizer(name)(JsonReader(options, "test"));
}

/// A file's whole contents, byte for byte.
inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// A tiny synthetic set (4 classes of 8x8 one-channel images) that a CNN learns in seconds.
inline DataSplits tiny_synthetic_data(int64_t train, int64_t test) {
  DataOptions options;
  options.name = "synthetic";
  options.synthetic_train = train;
  options.synthetic_test = test;
  options.synthetic_classes = 4;
  options.synthetic_image_size = 8;
  return load_dataset(options);
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
  std::string path() const { return path_.string(); }

 private:
  boost::filesystem::path path_;
};

/// An IDX file's bytes: magic (0, 0, type, rank), big-endian dimensions, then the body.
inline std::vector<uint8_t> idx_bytes(uint8_t type, const std::vector<uint32_t>& dims,
                                      const std::vector<uint8_t>& body) {
  std::vector<uint8_t> bytes = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t dim : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back((dim >> shift) & 0xFF);
  }
  bytes.insert(bytes.end(), body.begin(), body.end());
  return bytes;
}

/// Writes `bytes` gzip-compressed, or as they are (zlib's "T" mode) when `gzip` is false.
inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes,
                        bool gzip = true) {
  gzFile file = gzopen(path.c_str(), gzip ? "wb" : "wbT");
  REQUIRE(file != nullptr);
  REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) ==
          static_cast<int>(bytes.size()));
  REQUIRE(gzclose(file) == Z_OK);
}

struct ShellResult {
  int exit_code = -1;
  std::string output;  ///< standard output and error together
};

inline ShellResult run_shell(const std::string& command) {
  ShellResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer{};
  size_t read = 0;
  while ((read = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.output.append(buffer.data(), read);
  }
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

/// Runs this build's `lowbit` with `arguments`.
inline ShellResult lowbit_cli(const std::string& arguments) {
  return run_shell(fmt::format("'{}/bin/lowbit' {}", LOWBIT_BINARY_DIR, arguments));
}

/// The single integer a query returns, or -1 when the database cannot answer yet (not created,
/// schema not written, locked).
inline int64_t query_integer(const std::string& db, const std::string& sql) {
  sqlite3* handle = nullptr;
  int64_t value = -1;
  if (sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(handle, 5000);
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(handle, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK &&
        sqlite3_step(statement) == SQLITE_ROW) {
      value = sqlite3_column_int64(statement, 0);
    }
    sqlite3_finalize(statement);
  }
  sqlite3_close(handle);
  return value;
}

inline int64_t count_rows(const std::string& db, const std::string& sql) {
  const int64_t count = query_integer(db, sql);
  REQUIRE(count >= 0);
  return count;
}

inline std::string write_experiment(const TemporaryFolder& folder, const std::string& name,
                                    const nlohmann::json& spec) {
  const auto path = folder.file(name);
  std::ofstream(path) << spec.dump(2);
  return path;
}

}  // namespace lowbit::testing
