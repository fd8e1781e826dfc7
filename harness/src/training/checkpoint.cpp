#include <lowbit/training/checkpoint.h>
#include <lowbit/util/atomic_file.h>
#include <lowbit/util/exception_message.h>

#include <ATen/Context.h>
#include <boost/filesystem.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <mutex>
#include <stdexcept>

namespace lowbit {
namespace bfs = boost::filesystem;
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

/// Random generator state of the CPU and, when the trial runs on a GPU, of that device.
struct GeneratorState {
  torch::Tensor cpu;
  torch::Tensor device;
};

GeneratorState capture_generators(torch::Device device) {
  GeneratorState state;
  state.cpu = generator_state(at::detail::getDefaultCPUGenerator());
  if (!device.is_cpu())
    state.device = generator_state(at::globalContext().defaultGenerator(device));
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
  archive.write("rng_device",
                state.device.defined() ? state.device : torch::empty({0}, torch::kByte));
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

std::string strategy_key(size_t index) { return fmt::format("strategy{}", index); }

constexpr const char* kDatabaseIdKey = "database_id";

}  // namespace

TrialCheckpoint::TrialCheckpoint(std::string path, std::string database_id, torch::Device device)
    : path_(std::move(path)), database_id_(std::move(database_id)), device_(device) {}

TrainingPosition TrialCheckpoint::resume(NetworkImpl& network,
                                         const std::vector<Strategy*>& strategies,
                                         size_t stage_count) {
  if (!checkpoint_exists(path_)) return {};
  auto archive = std::make_unique<torch::serialize::InputArchive>();
  try {
    archive->load_from(path_, device_);
  } catch (const std::exception& e) {
    unreadable_reason_ = exception_message(e);
    remove_checkpoint(path_);
    return {};
  }
  c10::IValue owner;
  const std::string found =
      archive->try_read(kDatabaseIdKey, owner) && owner.isString() ? owner.toStringRef() : "";
  if (found != database_id_) {
    throw std::runtime_error(fmt::format(
        "{}: the checkpoint belongs to another results database (id \"{}\", this one is \"{}\"); "
        "move it away or remove it to start the trial over",
        path_, found, database_id_));
  }
  const TrainingPosition position = read_position(*archive);
  if (position.stage_index >= static_cast<int64_t>(stage_count) || position.epoch <= 0) {
    throw std::runtime_error(fmt::format(
        "{}: the checkpoint does not fit this trial's plan (stage {} of {}); remove it to "
        "start the trial over",
        path_, position.stage_index, stage_count));
  }
  torch::serialize::InputArchive network_archive;
  archive->read("network", network_archive);
  network.load(network_archive);
  for (size_t i = 0; i < strategies.size(); ++i) {
    torch::serialize::InputArchive strategy_archive;
    archive->read(strategy_key(i), strategy_archive);
    strategies[i]->load_state(strategy_archive);
  }
  epochs_done_ = read_epoch_records(*archive);
  position_ = position;
  archive_ = std::move(archive);
  return position_;
}

int64_t TrialCheckpoint::begin_stage(size_t stage_index, torch::optim::Optimizer& optimizer,
                                     const std::function<void()>& begin) {
  const bool resumed_here =
      resuming() && static_cast<int64_t>(stage_index) == position_.stage_index;
  if (!resumed_here) {
    begin();
    return 0;
  }
  const GeneratorState generators = read_generators(*archive_);
  const int64_t first_epoch = position_.epoch_in_stage;
  // The interrupted attempt drew from the generators in on_stage_begin only at the stage's start.
  if (first_epoch == 0) restore_generators(generators, device_);
  begin();
  if (first_epoch > 0) {
    torch::serialize::InputArchive optimizer_archive;
    archive_->read("optimizer", optimizer_archive);
    optimizer.load(optimizer_archive);
    restore_generators(generators, device_);
  }
  return first_epoch;
}

void TrialCheckpoint::save(const NetworkImpl& network, const torch::optim::Optimizer& optimizer,
                           const std::vector<Strategy*>& strategies, const TrainingPosition& next,
                           const std::vector<EpochRecord>& epochs) const {
  if (path_.empty()) return;
  torch::serialize::OutputArchive archive;
  archive.write(kDatabaseIdKey, c10::IValue(database_id_));
  torch::serialize::OutputArchive network_archive;
  network.save(network_archive);
  archive.write("network", network_archive);
  torch::serialize::OutputArchive optimizer_archive;
  optimizer.save(optimizer_archive);
  archive.write("optimizer", optimizer_archive);
  for (size_t i = 0; i < strategies.size(); ++i) {
    torch::serialize::OutputArchive strategy_archive;
    strategies[i]->save_state(strategy_archive);
    archive.write(strategy_key(i), strategy_archive);
  }
  write_position(archive, next);
  write_generators(archive, capture_generators(device_));
  write_epoch_records(archive, epochs);
  save_archive_atomically(archive, path_);
}

void save_archive_atomically(torch::serialize::OutputArchive& archive, const std::string& path) {
  // Through our own sink: LibTorch's file writer aborts the process when the disk fills up.
  write_file_atomically(path, [&archive](const ByteSink& sink) { archive.save_to(sink); });
}

void remove_checkpoint(const std::string& path) {
  if (path.empty()) return;
  boost::system::error_code ignored;
  bfs::remove(path, ignored);
  // Temporaries of writers killed mid-save: "<name>.tmp-<pid>".
  const auto folder = bfs::path(path).parent_path();
  const auto prefix = bfs::path(path).filename().string() + ".tmp-";
  if (bfs::is_directory(folder, ignored)) {
    for (bfs::directory_iterator it(folder, ignored), end; it != end; it.increment(ignored)) {
      if (it->path().filename().string().rfind(prefix, 0) == 0) bfs::remove(it->path(), ignored);
    }
  }
  // The run's folder goes too once its last checkpoint has (bfs::remove leaves a non-empty one).
  bfs::remove(bfs::path(path).parent_path(), ignored);
}

bool checkpoint_exists(const std::string& path) {
  return !path.empty() && bfs::is_regular_file(path);
}

}  // namespace lowbit
