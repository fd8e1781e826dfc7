#include <lowbit/data/augment.h>
#include <lowbit/training/checkpoint.h>
#include <lowbit/training/optimizer.h>
#include <lowbit/training/train_step.h>
#include <lowbit/training/trainer.h>
#include <lowbit/training/weights.h>

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <stdexcept>

namespace lowbit {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
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

/// Reports go nowhere for a trainer given no reporter.
TrialReporter& no_reporter() {
  static TrialReporter none;
  return none;
}

/// The trial's stages: its target, as its strategies rewrite it.
TrainingPlan plan_trial(const TrialSpec& spec) {
  TrainingPlan plan{{spec.target}};
  for (auto* strategy : spec.strategies) strategy->plan(plan);
  if (plan.stages.empty()) throw std::runtime_error("the strategies left no training stage");
  return plan;
}

/// Training images per second over the epochs this process trains; evaluation is left out.
struct Throughput {
  int64_t images = 0;
  double seconds = 0;

  void add_epoch(int64_t epoch_images, double images_per_second) {
    images += epoch_images;
    seconds += epoch_images / images_per_second;
  }
  double images_per_second() const { return images / std::max(seconds, 1e-9); }
};

/// The trial's results are its last epoch's; its cost counts every epoch it recorded, those
/// trained before a resume too.
void summarize(TrialRecord& trial, int64_t images_per_epoch) {
  const auto& last = trial.epochs.back();
  trial.top1 = last.test_top1;
  trial.top5 = last.test_top5;
  trial.final_loss = last.train_loss;
  trial.extra = last.extra;
  trial.epochs_trained = static_cast<int64_t>(trial.epochs.size());
  trial.images_seen = trial.epochs_trained * images_per_epoch;
}

/// Where training continues after epoch `epoch_in_stage` of stage `stage_index`: the last epoch of
/// a stage points at the next stage's start.
TrainingPosition position_after(size_t stage_index, int64_t epoch_in_stage, const Stage& stage,
                                const TrainingState& state) {
  const bool stage_done = epoch_in_stage + 1 == stage.epochs;
  return {static_cast<int64_t>(stage_index) + (stage_done ? 1 : 0),
          stage_done ? 0 : epoch_in_stage + 1, state.epoch, state.global_step};
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

std::pair<int64_t, int64_t> count_correct(const torch::Tensor& logits,
                                          const torch::Tensor& labels) {
  const int64_t k = std::min<int64_t>(5, logits.size(1));
  auto top = std::get<1>(logits.topk(k, /*dim=*/1));
  auto hits = top.eq(labels.unsqueeze(1));
  auto top1 = hits.select(1, 0).sum().item<int64_t>();
  auto top5 = hits.any(1).sum().item<int64_t>();
  return {top1, top5};
}

Trainer::Trainer(TrainingOptions options, const DataSplits& data, torch::Device device,
                 TrialReporter* reporter)
    : options_(std::move(options)),
      data_(data),
      device_(device),
      reporter_(reporter != nullptr ? *reporter : no_reporter()) {}

int64_t Trainer::steps_per_epoch() const {
  const int64_t full = (data_.train.size() + options_.batch_size - 1) / options_.batch_size;
  return options_.max_steps_per_epoch > 0 ? std::min(full, options_.max_steps_per_epoch) : full;
}

double Trainer::learning_rate(const Stage& stage, int64_t epoch_in_stage, int64_t step_in_epoch,
                              int64_t steps_per_epoch) const {
  const auto& schedule = options_.schedule;
  if (schedule.kind == ScheduleKind::multistep) {
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

Accuracy Trainer::evaluate(NetworkImpl& network, int64_t limit) {
  const bool was_training = network.is_training();
  network.eval();
  torch::NoGradGuard no_grad;
  AutocastScope autocast(device_, options_.performance.autocast_bf16());
  int64_t top1 = 0;
  int64_t top5 = 0;
  const int64_t total = limit > 0 ? std::min(limit, data_.test.size()) : data_.test.size();
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
                                 TrainingState& state, const TrialSpec& spec, int64_t test_images) {
  network.train();
  const int64_t steps = steps_per_epoch();
  const int64_t train_size = data_.train.size();
  auto order =
      torch::randperm(train_size, torch::TensorOptions().dtype(torch::kLong).device(device_));
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
    state.learning_rate_scale =
        state.stage->learning_rate > 0 ? lr / state.stage->learning_rate : 0;
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
    throw std::runtime_error(
        fmt::format("training loss diverged ({}) in epoch {}", record.train_loss, record.epoch));
  }
  auto accuracy = evaluate(network, test_images);
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

std::shared_ptr<NetworkImpl> Trainer::build_student(const TrialSpec& spec) const {
  auto network = spec.build_network();
  if (spec.load_initial_weights) spec.load_initial_weights(*network);
  if (options_.performance.channels_last) to_channels_last(*network);
  network->to(device_);
  return network;
}

TrainingPosition Trainer::resume(TrialCheckpoint& checkpoint, const TrialSpec& spec,
                                 const TrainingPlan& plan, NetworkImpl& network,
                                 TrainingState& state, TrialRecord& trial) {
  const TrainingPosition start = checkpoint.resume(network, spec.strategies, plan.stages.size());
  if (const auto& reason = checkpoint.unreadable_reason()) {
    reporter_.on_checkpoint_unreadable(spec.trial, spec.checkpoint_path, *reason);
  }
  if (checkpoint.resuming()) {
    trial.epochs = checkpoint.epochs_done();
    state.epoch = start.epoch;
    state.global_step = start.global_step;
    reporter_.on_trial_resumed(spec.trial, start.epoch, state.total_epochs, spec.checkpoint_path);
  }
  return start;
}

TrialRecord Trainer::train(const TrialSpec& spec) {
  torch::manual_seed(spec.seed);
  TrialRecord trial;
  trial.seed = spec.seed;
  trial.device = device_description(device_);
  trial.started_from = spec.started_from;
  const auto trial_start = Clock::now();

  const TrainingPlan plan = plan_trial(spec);
  apply_backend_flags(options_.performance, device_);
  auto network = build_student(spec);

  TrainingState state;
  state.network = network.get();
  state.device = device_;
  state.seed = spec.seed;
  state.model = spec.model;
  state.quantizer = spec.quantizer.get();
  state.steps_per_epoch = steps_per_epoch();
  // What this epoch evaluates on, for the model and for what strategies evaluate (a KD teacher).
  int64_t epoch_test_images = 0;
  const FunctionTrainingServices services(
      [this, &spec](const std::string& model, NetworkStart start) {
        auto other = spec.build_full_precision(model, start);
        if (options_.performance.channels_last) to_channels_last(*other);
        return other;
      },
      [this, &epoch_test_images](NetworkImpl& other) {
        auto accuracy = evaluate(other, epoch_test_images);
        return std::make_pair(accuracy.top1, accuracy.top5);
      });
  state.services = &services;
  for (const auto& stage : plan.stages) state.total_epochs += stage.epochs;
  for (auto* strategy : spec.strategies) strategy->on_trial_begin(state);
  // Data order and augmentation draw from the global generator. Seeding it again here, after the
  // strategies built what they build (a KD teacher's initial weights), gives trial i of every row
  // of an experiment the same batches: rows are compared on common random numbers.
  torch::manual_seed(spec.seed ^ kDataStreamTag);

  // A checkpoint of this trial: continue after its last completed epoch. Everything built above
  // (network, strategies' own networks) is overwritten from it, and the random generators are put
  // back where the interrupted run had them, so the rest of the trial is the same.
  TrialCheckpoint checkpoint(spec.checkpoint_path, spec.database_id, device_);
  const TrainingPosition start = resume(checkpoint, spec, plan, *network, state, trial);

  const int64_t images_per_epoch =
      std::min(data_.train.size(), state.steps_per_epoch * options_.batch_size);
  Throughput throughput;
  int64_t epochs_this_session = 0;
  for (size_t s = static_cast<size_t>(start.stage_index); s < plan.stages.size(); ++s) {
    const auto& stage = plan.stages[s];
    state.stage = &stage;
    state.stage_index = static_cast<int64_t>(s);
    apply_stage_precision(*network, stage);
    // Each stage starts from the previous stage's weights with a fresh optimizer.
    auto optimizer = make_sgd(options_.optimizer, trainable_parameters(*network, spec.strategies),
                              stage.learning_rate);
    const int64_t first_epoch = checkpoint.begin_stage(s, optimizer, [&] {
      for (auto* strategy : spec.strategies) strategy->on_stage_begin(state);
    });

    for (int64_t e = first_epoch; e < stage.epochs; ++e) {
      state.epoch_in_stage = e;
      const bool last_epoch = state.epoch + 1 == state.total_epochs;
      epoch_test_images = last_epoch ? 0 : options_.curve_test_images;
      auto record = train_epoch(*network, optimizer, state, spec, epoch_test_images);
      for (auto* strategy : spec.strategies) strategy->on_epoch_end(state, record.extra);
      throughput.add_epoch(images_per_epoch, record.images_per_second);
      trial.epochs.push_back(record);
      ++state.epoch;
      ++epochs_this_session;
      const auto next = position_after(s, e, stage, state);
      if (next.stage_index < static_cast<int64_t>(plan.stages.size())) {
        checkpoint.save(*network, optimizer, spec.strategies, next, trial.epochs);
      }
      const double elapsed = seconds_since(trial_start);
      reporter_.on_epoch(
          spec.trial, record,
          {state.total_epochs, elapsed / epochs_this_session * (state.total_epochs - state.epoch)});
    }
  }

  if (!spec.weights_path.empty()) save_weights(*network, spec.weights_path);
  summarize(trial, images_per_epoch);
  trial.wall_seconds = seconds_since(trial_start);
  trial.images_per_second = throughput.images_per_second();
  return trial;
}

}  // namespace lowbit
