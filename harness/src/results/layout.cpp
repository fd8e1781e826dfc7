#include <lowbit/results/layout.h>

#include <fmt/format.h>

#include <filesystem>

namespace lowbit {
namespace fs = std::filesystem;

std::string database_folder(const std::string& database) {
  return fs::absolute(database).lexically_normal().string() + ".d";
}

std::string trial_weights_path(const std::string& database, const std::string& run_hash,
                               int64_t trial_index) {
  return (fs::path(database_folder(database)) / "weights" / run_hash /
          fmt::format("trial-{}.pt", trial_index))
      .string();
}

std::string model_spec_path(const std::string& database, const std::string& run_hash) {
  return (fs::path(database_folder(database)) / "weights" / run_hash / "model_spec.json").string();
}

std::string trial_checkpoint_path(const std::string& database, const std::string& run_hash,
                                  int64_t trial_index) {
  return (fs::path(database_folder(database)) / "checkpoints" / run_hash /
          fmt::format("trial-{}.ckpt", trial_index))
      .string();
}

}  // namespace lowbit
