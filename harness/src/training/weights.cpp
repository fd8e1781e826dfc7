#include <lowbit/training/checkpoint.h>
#include <lowbit/training/weights.h>
#include <lowbit/util/atomic_file.h>

#include <boost/filesystem.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace lowbit {
namespace bfs = boost::filesystem;

void save_weights(torch::nn::Module& module, const std::string& path) {
  torch::serialize::OutputArchive archive;
  module.save(archive);
  save_archive_atomically(archive, path);
}

void load_weights(torch::nn::Module& module, const std::string& path) {
  if (!bfs::is_regular_file(path)) {
    throw std::runtime_error(fmt::format("{}: no saved weights there", path));
  }
  torch::serialize::InputArchive archive;
  archive.load_from(path);
  module.load(archive);
}

void save_model_spec(const ModelSpec& spec, const std::string& path) {
  write_text_atomically(path, nlohmann::json{{"in_channels", spec.in_channels},
                                             {"num_classes", spec.num_classes},
                                             {"image_size", spec.image_size}}
                                      .dump(2) +
                                  "\n");
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
