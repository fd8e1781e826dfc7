#include <lowbit/training/weights.h>

#include <boost/filesystem.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>

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

std::string model_spec_path(const std::string& database, const std::string& run_hash) {
  return (fs::absolute(database).parent_path() / "weights" / run_hash / "model_spec.json").string();
}

void save_model_spec(const ModelSpec& spec, const std::string& path) {
  fs::create_directories(fs::path(path).parent_path());
  const auto temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << nlohmann::json{{"in_channels", spec.in_channels},
                          {"num_classes", spec.num_classes},
                          {"image_size", spec.image_size}}.dump(2)
        << "\n";
    if (!out.flush()) throw std::runtime_error(fmt::format("{}: cannot write", temporary));
  }
  fs::rename(temporary, path);
}

ModelSpec load_model_spec(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("{}: missing (the run's model dimensions)", path));
  try {
    auto json = nlohmann::json::parse(in);
    return ModelSpec{json.at("in_channels").get<int64_t>(), json.at("num_classes").get<int64_t>(),
                     json.at("image_size").get<int64_t>()};
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("{}: malformed model spec: {}", path, e.what()));
  }
}

}  // namespace lowbit
