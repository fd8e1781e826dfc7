#include <lowbit/training/checkpoint.h>
#include <lowbit/util/atomic_file.h>

#include <ATen/Context.h>
#include <boost/filesystem.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <mutex>

namespace lowbit {
namespace fs = boost::filesystem;
namespace {

torch::Tensor generator_state(at::Generator generator) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_generator_state(at::Generator generator, const torch::Tensor& state) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

nlohmann::json epoch_json(const EpochRecord& epoch) {
  return {{"epoch", epoch.epoch},
          {"stage", epoch.stage},
          {"weight_bits", epoch.weight_bits},
          {"activation_bits", epoch.activation_bits},
          {"learning_rate", epoch.learning_rate},
          {"train_loss", epoch.train_loss},
          {"train_top1", epoch.train_top1},
          {"test_top1", epoch.test_top1},
          {"test_top5", epoch.test_top5},
          {"images_per_second", epoch.images_per_second},
          {"seconds", epoch.seconds},
          {"extra", epoch.extra}};
}

EpochRecord epoch_from_json(const nlohmann::json& json) {
  EpochRecord epoch;
  epoch.epoch = json.at("epoch").get<int64_t>();
  epoch.stage = json.at("stage").get<std::string>();
  epoch.weight_bits = json.at("weight_bits").get<int>();
  epoch.activation_bits = json.at("activation_bits").get<int>();
  epoch.learning_rate = json.at("learning_rate").get<double>();
  epoch.train_loss = json.at("train_loss").get<double>();
  epoch.train_top1 = json.at("train_top1").get<double>();
  epoch.test_top1 = json.at("test_top1").get<double>();
  epoch.test_top5 = json.at("test_top5").get<double>();
  epoch.images_per_second = json.at("images_per_second").get<double>();
  epoch.seconds = json.at("seconds").get<double>();
  epoch.extra = json.at("extra").get<std::map<std::string, double>>();
  return epoch;
}

}  // namespace

GeneratorState capture_generators(torch::Device device) {
  GeneratorState state;
  state.cpu = generator_state(at::detail::getDefaultCPUGenerator());
  if (!device.is_cpu()) state.device = generator_state(at::globalContext().defaultGenerator(device));
  return state;
}

void restore_generators(const GeneratorState& state, torch::Device device) {
  set_generator_state(at::detail::getDefaultCPUGenerator(), state.cpu);
  if (!device.is_cpu() && state.device.defined()) {
    set_generator_state(at::globalContext().defaultGenerator(device), state.device);
  }
}

void write_position(torch::serialize::OutputArchive& archive, const TrainingPosition& position) {
  archive.write("position", torch::tensor({position.stage_index, position.epoch_in_stage,
                                           position.epoch, position.global_step},
                                          torch::kLong));
}

TrainingPosition read_position(torch::serialize::InputArchive& archive) {
  torch::Tensor values;
  archive.read("position", values);
  auto v = values.to(torch::kCPU);
  return {v[0].item<int64_t>(), v[1].item<int64_t>(), v[2].item<int64_t>(), v[3].item<int64_t>()};
}

void write_generators(torch::serialize::OutputArchive& archive, const GeneratorState& state) {
  archive.write("rng_cpu", state.cpu);
  archive.write("rng_device", state.device.defined() ? state.device : torch::empty({0}, torch::kByte));
}

GeneratorState read_generators(torch::serialize::InputArchive& archive) {
  GeneratorState state;
  archive.read("rng_cpu", state.cpu);
  archive.read("rng_device", state.device);
  if (state.device.numel() == 0) state.device = torch::Tensor();
  return state;
}

void write_epoch_records(torch::serialize::OutputArchive& archive,
                         const std::vector<EpochRecord>& epochs) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& epoch : epochs) list.push_back(epoch_json(epoch));
  archive.write("epochs", c10::IValue(list.dump()));
}

std::vector<EpochRecord> read_epoch_records(torch::serialize::InputArchive& archive) {
  c10::IValue text;
  archive.read("epochs", text);
  std::vector<EpochRecord> epochs;
  for (const auto& item : nlohmann::json::parse(text.toStringRef())) {
    epochs.push_back(epoch_from_json(item));
  }
  return epochs;
}

void save_archive_atomically(torch::serialize::OutputArchive& archive, const std::string& path) {
  // Through our own sink: LibTorch's file writer aborts the process when the disk fills up.
  write_file_atomically(path, [&archive](const ByteSink& sink) { archive.save_to(sink); });
}

void remove_checkpoint(const std::string& path) {
  if (path.empty()) return;
  boost::system::error_code ignored;
  fs::remove(path, ignored);
  // Temporaries of writers killed mid-save: "<name>.tmp-<pid>".
  const auto folder = fs::path(path).parent_path();
  const auto prefix = fs::path(path).filename().string() + ".tmp-";
  if (fs::is_directory(folder, ignored)) {
    for (fs::directory_iterator it(folder, ignored), end; it != end; it.increment(ignored)) {
      if (it->path().filename().string().rfind(prefix, 0) == 0) fs::remove(it->path(), ignored);
    }
  }
  // The run's folder goes too once its last checkpoint has (fs::remove leaves a non-empty one).
  fs::remove(fs::path(path).parent_path(), ignored);
}

bool checkpoint_exists(const std::string& path) {
  return !path.empty() && fs::is_regular_file(path);
}

}  // namespace lowbit
