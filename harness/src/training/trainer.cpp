#include <lowbit/data/augment.h>
#include <lowbit/training/checkpoint.h>
#include <lowbit/training/train_step.h>
#include <lowbit/training/trainer.h>
#include <lowbit/training/weights.h>
#include <lowbit/util/exception_message.h>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <chrono>
#include <cmath>
#include <stdexcept>

namespace lowbit {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string format_duration(double seconds) {
  auto total = static_cast<int64_t>(std::llround(seconds));
  if (total >= 3600) return fmt::format("{}h{:02}m", total / 3600, (total % 3600) / 60);
  if (total >= 60) return fmt::format("{}m{:02}s", total / 60, total % 60);
  return fmt::format("{}s", total);
}

void synchronize(torch::Device device) {
  // Device work is asynchronous: wall-clock throughput needs the queue drained.
  if (device.is_cuda()) torch::cuda::synchronize();
}

void set_learning_rate(torch::optim::SGD& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) {
    static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
  }
}

/// Strategy metrics for the progress line, e.g. " teacher_top1 91.2".
std::string format_extra(const std::map<std::string, double>& extra) {
  std::string text;
  for (const auto& [key, value] : extra) text += fmt::format(" {} {:.4g}", key, value);
  return text;
}

std::string strategy_key(size_t index) { return fmt::format("strategy{}", index); }

constexpr const char* kDatabaseIdKey = "database_id";

void save_checkpoint(const TrialSpec& spec, NetworkImpl& network, torch::optim::SGD& optimizer,
                     const TrainingPosition& position, const std::vector<EpochRecord>& epochs,
                     torch::Device device) {
  const auto& strategies = spec.strategies;
  torch::serialize::OutputArchive archive;
  archive.write(kDatabaseIdKey, c10::IValue(spec.database_id));
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
  write_position(archive, position);
  write_generators(archive, capture_generators(device));
  write_epoch_records(archive, epochs);
  save_archive_atomically(archive, spec.checkpoint_path);
}

/// The trial's checkpoint, opened; null when there is none, or when it cannot be read (a file
/// cut short by a full disk or a copy): that one is reported, removed, and the trial starts over.
std::unique_ptr<torch::serialize::InputArchive> open_checkpoint(const TrialSpec& spec,
                                                                torch::Device device,
                                                                std::ostream* progress) {
  if (!checkpoint_exists(spec.checkpoint_path)) return nullptr;
  auto archive = std::make_unique<torch::serialize::InputArchive>();
  try {
    archive->load_from(spec.checkpoint_path, device);
  } catch (const std::exception& e) {
    if (progress != nullptr) {
      fmt::print(*progress, "{} cannot read the checkpoint {} ({}); the trial starts over\n",
                 spec.label, spec.checkpoint_path, exception_message(e));
    }
    remove_checkpoint(spec.checkpoint_path);
    return nullptr;
  }
  c10::IValue owner;
  const std::string found =
      archive->try_read(kDatabaseIdKey, owner) && owner.isString() ? owner.toStringRef() : "";
  if (found != spec.database_id) {
    throw std::runtime_error(fmt::format(
        "{}: the checkpoint belongs to another results database (id \"{}\", this one is \"{}\"); "
        "move it away or remove it to start the trial over",
        spec.checkpoint_path, found, spec.database_id));
  }
  return archive;
}

}  // namespace

void apply_stage_precision(NetworkImpl& network, const Stage& stage) {
  for (auto& quantizer : tensor_quantizers(network)) {
    if (std::dynamic_pointer_cast<WeightQuantizerImpl>(quantizer)) {
      quantizer->set_bits(stage.weight_bits);
    } else if (std::dynamic_pointer_cast<ActivationQuantizerImpl>(quantizer)) {
      quantizer->set_bits(stage.activation_bits);
    }
  }
}

std::pair<int64_t, int64_t> count_correct(const torch::Tensor& logits, const torch::Tensor& labels) {
  const int64_t k = std::min<int64_t>(5, logits.size(1));
  auto top = std::get<1>(logits.topk(k, /*dim=*/1));
  auto hits = top.eq(labels.unsqueeze(1));
  auto top1 = hits.select(1, 0).sum().item<int64_t>();
  auto top5 = hits.any(1).sum().item<int64_t>();
  return {top1, top5};
}

Trainer::Trainer(TrainingOptions options, const DataSplits& data, torch::Device device,
                 std::ostream* progress)
    : options_(std::move(options)), data_(data), device_(device), progress_(progress) {}

int64_t Trainer::steps_per_epoch() const {
  const int64_t full = (data_.train.size() + options_.batch_size - 1) / options_.batch_size;
  return options_.max_steps_per_epoch > 0 ? std::min(full, options_.max_steps_per_epoch) : full;
}

double Trainer::learning_rate(const Stage& stage, int64_t epoch_in_stage, int64_t step_in_epoch,
                              int64_t steps_per_epoch) const {
  const auto& schedule = options_.schedule;
  if (schedule.name == "multistep") {
    // Milestones count epochs from the start of the stage.
    double lr = stage.learning_rate;
    for (auto milestone : schedule.milestones) {
      if (epoch_in_stage >= milestone) lr *= schedule.gamma;
    }
    return lr;
  }
  // Cosine annealing per step, so short runs still anneal smoothly.
  const double total = static_cast<double>(stage.epochs * steps_per_epoch);
  const double done = static_cast<double>(epoch_in_stage * steps_per_epoch + step_in_epoch);
  return 0.5 * stage.learning_rate * (1.0 + std::cos(M_PI * done / total));
}

Accuracy Trainer::evaluate(NetworkImpl& network) {
  const bool was_training = network.is_training();
  network.eval();
  torch::NoGradGuard no_grad;
  AutocastScope autocast(device_, options_.performance.autocast_bf16());
  int64_t top1 = 0;
  int64_t top5 = 0;
  const int64_t total = data_.test.size();
  for (int64_t start = 0; start < total; start += options_.eval_batch_size) {
    const int64_t length = std::min(options_.eval_batch_size, total - start);
    auto images = input_layout(data_.test.slice(start, length), options_.performance);
    auto labels = data_.test.labels.narrow(0, start, length);
    auto [hit1, hit5] = count_correct(network.forward(images).logits, labels);
    top1 += hit1;
    top5 += hit5;
  }
  network.train(was_training);
  if (total == 0) return {};
  return {100.0 * top1 / total, 100.0 * top5 / total};
}

EpochRecord Trainer::train_epoch(NetworkImpl& network, torch::optim::SGD& optimizer,
                                 TrainingState& state, const TrialSpec& spec) {
  network.train();
  const int64_t steps = steps_per_epoch();
  const int64_t train_size = data_.train.size();
  auto order = torch::randperm(train_size, torch::TensorOptions().dtype(torch::kLong).device(device_));
  auto loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kDouble).device(device_));
  auto correct = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(device_));
  int64_t seen = 0;
  double lr = 0;

  synchronize(device_);
  const auto start = Clock::now();
  for (int64_t step = 0; step < steps; ++step) {
    state.step_in_epoch = step;
    const int64_t begin = step * options_.batch_size;
    const int64_t length = std::min(options_.batch_size, train_size - begin);
    auto index = order.narrow(0, begin, length);
    Batch batch{input_layout(augment_batch(data_.train.select(index), options_.augment),
                             options_.performance),
                data_.train.labels.index_select(0, index)};

    lr = learning_rate(*state.stage, state.epoch_in_stage, step, steps);
    set_learning_rate(optimizer, lr);
    state.learning_rate = lr;
    state.learning_rate_scale = state.stage->learning_rate > 0 ? lr / state.stage->learning_rate : 0;
    auto [output, loss] =
        train_step(network, optimizer, state, spec.strategies, batch, options_.performance);

    // Accumulated on the device: one synchronisation per epoch instead of one per step.
    loss_sum += loss.detach().to(torch::kDouble) * length;
    correct += output.logits.detach().argmax(1).eq(batch.labels).sum();
    seen += length;
    ++state.global_step;
  }
  synchronize(device_);
  const double train_seconds = seconds_since(start);

  EpochRecord record;
  record.epoch = state.epoch + 1;
  record.stage = state.stage->name;
  record.weight_bits = state.stage->weight_bits;
  record.activation_bits = state.stage->activation_bits;
  record.learning_rate = lr;
  record.train_loss = loss_sum.item<double>() / std::max<int64_t>(seen, 1);
  record.train_top1 = 100.0 * correct.item<int64_t>() / std::max<int64_t>(seen, 1);
  record.images_per_second = seen / std::max(train_seconds, 1e-9);
  if (!std::isfinite(record.train_loss)) {
    throw std::runtime_error(fmt::format("training loss diverged ({}) in epoch {}",
                                         record.train_loss, record.epoch));
  }
  auto accuracy = evaluate(network);
  record.test_top1 = accuracy.top1;
  record.test_top5 = accuracy.top5;
  record.seconds = seconds_since(start);
  return record;
}

std::string device_description(torch::Device device) {
  if (!device.is_cpu()) return device.str();
  const int threads = torch::get_num_threads();
  return fmt::format("cpu ({} thread{})", threads, threads == 1 ? "" : "s");
}

namespace {
/// Keeps the data stream's seed apart from the initial weights' (spec.seed itself).
constexpr uint64_t kDataStreamTag = 0x6461'7461'6f72'6472ULL;  // "dataordr"
}  // namespace

TrialRecord Trainer::train(const TrialSpec& spec) {
  torch::manual_seed(spec.seed);
  TrialRecord trial;
  trial.seed = spec.seed;
  trial.device = device_description(device_);
  const auto trial_start = Clock::now();

  TrainingPlan plan{{spec.target}};
  for (auto* strategy : spec.strategies) strategy->plan(plan);
  if (plan.stages.empty()) throw std::runtime_error("the strategies left no training stage");

  apply_backend_flags(options_.performance, device_);
  auto network = spec.build_network();
  if (spec.load_initial_weights) spec.load_initial_weights(*network);
  trial.started_from = spec.started_from;
  if (options_.performance.channels_last) to_channels_last(*network);
  network->to(device_);

  TrainingState state;
  state.network = network.get();
  state.device = device_;
  state.seed = spec.seed;
  state.model = spec.model;
  state.quantizer = spec.quantizer.get();
  state.steps_per_epoch = steps_per_epoch();
  state.build_full_precision_network = [this, &spec](const std::string& model, NetworkStart start) {
    auto other = spec.build_full_precision(model, start);
    if (options_.performance.channels_last) to_channels_last(*other);
    return other;
  };
  state.evaluate = [this](NetworkImpl& other) {
    auto accuracy = evaluate(other);
    return std::make_pair(accuracy.top1, accuracy.top5);
  };
  for (const auto& stage : plan.stages) state.total_epochs += stage.epochs;
  for (auto* strategy : spec.strategies) strategy->on_trial_begin(state);
  // Data order and augmentation draw from the global generator. Seeding it again here, after the
  // strategies built what they build (a KD teacher's initial weights), gives trial i of every row
  // of an experiment the same batches: rows are compared on common random numbers.
  torch::manual_seed(spec.seed ^ kDataStreamTag);

  // A checkpoint of this trial: continue after its last completed epoch. Everything built above
  // (network, strategies' own networks) is overwritten from it, and the random generators are put
  // back where the interrupted run had them, so the rest of the trial is the same.
  TrainingPosition start;
  auto resume = open_checkpoint(spec, device_, progress_);
  if (resume) {
    start = read_position(*resume);
    if (start.stage_index >= static_cast<int64_t>(plan.stages.size()) || start.epoch <= 0) {
      throw std::runtime_error(fmt::format(
          "{}: the checkpoint does not fit this trial's plan (stage {} of {}); remove it to "
          "start the trial over", spec.checkpoint_path, start.stage_index, plan.stages.size()));
    }
    torch::serialize::InputArchive network_archive;
    resume->read("network", network_archive);
    network->load(network_archive);
    for (size_t i = 0; i < spec.strategies.size(); ++i) {
      torch::serialize::InputArchive strategy_archive;
      resume->read(strategy_key(i), strategy_archive);
      spec.strategies[i]->load_state(strategy_archive);
    }
    trial.epochs = read_epoch_records(*resume);
    state.epoch = start.epoch;
    state.global_step = start.global_step;
    if (progress_ != nullptr) {
      fmt::print(*progress_, "{} resumed after epoch {}/{} from {}\n", spec.label, start.epoch,
                 state.total_epochs, spec.checkpoint_path);
    }
  }
  const GeneratorState resumed_generators =
      resume ? read_generators(*resume) : GeneratorState{};

  // Throughput over the whole trial counts training steps only, not evaluation.
  const int64_t images_per_epoch =
      std::min(data_.train.size(), state.steps_per_epoch * options_.batch_size);
  int64_t images = 0;
  double train_seconds = 0;
  int64_t epochs_this_session = 0;
  for (size_t s = static_cast<size_t>(start.stage_index); s < plan.stages.size(); ++s) {
    const auto& stage = plan.stages[s];
    state.stage = &stage;
    state.stage_index = static_cast<int64_t>(s);
    apply_stage_precision(*network, stage);
    // Each stage starts from the previous stage's weights with a fresh optimizer.
    torch::optim::SGD optimizer(
        trainable_parameters(*network, spec.strategies),
        torch::optim::SGDOptions(stage.learning_rate)
            .momentum(options_.optimizer.momentum)
            .nesterov(options_.optimizer.nesterov)
            .weight_decay(options_.optimizer.weight_decay));
    const bool resuming_here = resume && s == static_cast<size_t>(start.stage_index);
    const int64_t first_epoch = resuming_here ? start.epoch_in_stage : 0;
    // The interrupted run drew from the generators in on_stage_begin only at the stage's start.
    if (resuming_here && first_epoch == 0) restore_generators(resumed_generators, device_);
    for (auto* strategy : spec.strategies) strategy->on_stage_begin(state);
    if (resuming_here && first_epoch > 0) {
      torch::serialize::InputArchive optimizer_archive;
      resume->read("optimizer", optimizer_archive);
      optimizer.load(optimizer_archive);
      restore_generators(resumed_generators, device_);
    }

    for (int64_t e = first_epoch; e < stage.epochs; ++e) {
      state.epoch_in_stage = e;
      auto record = train_epoch(*network, optimizer, state, spec);
      for (auto* strategy : spec.strategies) strategy->on_epoch_end(state, record.extra);
      images += images_per_epoch;
      train_seconds += images_per_epoch / record.images_per_second;
      trial.epochs.push_back(record);
      ++state.epoch;
      ++epochs_this_session;
      if (!spec.checkpoint_path.empty()) {
        // The next position; the last epoch of a stage points at the next stage's start.
        const bool stage_done = e + 1 == stage.epochs;
        TrainingPosition next{static_cast<int64_t>(s) + (stage_done ? 1 : 0),
                              stage_done ? 0 : e + 1, state.epoch, state.global_step};
        if (next.stage_index < static_cast<int64_t>(plan.stages.size())) {
          save_checkpoint(spec, *network, optimizer, next, trial.epochs, device_);
        }
      }
      if (progress_ != nullptr) {
        const double elapsed = seconds_since(trial_start);
        const double eta = elapsed / epochs_this_session * (state.total_epochs - state.epoch);
        fmt::print(*progress_,
                   "{} epoch {}/{} [{} {}] loss {:.4f} train {:.2f}% test {:.2f}% top5 {:.2f}% "
                   "lr {:.4g} {:.0f} img/s ETA {}{}\n",
                   spec.label, record.epoch, state.total_epochs, stage.name,
                   precision_label(stage.weight_bits, stage.activation_bits), record.train_loss,
                   record.train_top1, record.test_top1, record.test_top5, record.learning_rate,
                   record.images_per_second, format_duration(eta), format_extra(record.extra));
        progress_->flush();
      }
    }
  }

  const auto& last = trial.epochs.back();
  trial.top1 = last.test_top1;
  trial.top5 = last.test_top5;
  trial.final_loss = last.train_loss;
  trial.extra = last.extra;
  if (!spec.weights_path.empty()) save_weights(*network, spec.weights_path);
  trial.wall_seconds = seconds_since(trial_start);
  trial.images_per_second = images / std::max(train_seconds, 1e-9);
  // Counted from the records, so that epochs trained before a resume count too.
  trial.epochs_trained = static_cast<int64_t>(trial.epochs.size());
  trial.images_seen = trial.epochs_trained * images_per_epoch;
  return trial;
}

}  // namespace lowbit
