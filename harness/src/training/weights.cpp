#include <lowbit/training/weights.h>

#include <boost/filesystem.hpp>
#include <fmt/format.h>

namespace lowbit {
namespace fs = boost::filesystem;

std::string trial_weights_path(const std::string& database, const std::string& run_hash,
                               int64_t trial_index) {
  auto folder = fs::absolute(database).parent_path() / "weights" / run_hash;
  return (folder / fmt::format("trial-{}.pt", trial_index)).string();
}

void save_weights(torch::nn::Module& module, const std::string& path) {
  fs::create_directories(fs::path(path).parent_path());
  const std::string temporary = path + ".tmp";
  torch::serialize::OutputArchive archive;
  module.save(archive);
  archive.save_to(temporary);
  fs::rename(temporary, path);
}

void load_weights(torch::nn::Module& module, const std::string& path) {
  if (!fs::is_regular_file(path)) {
    throw std::runtime_error(fmt::format("{}: no saved weights there", path));
  }
  torch::serialize::InputArchive archive;
  archive.load_from(path);
  module.load(archive);
}

}  // namespace lowbit
