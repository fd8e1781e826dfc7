#include <lowbit/data/augment.h>
#include <lowbit/training/trainer.h>
#include <lowbit/training/weights.h>

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

std::vector<torch::Tensor> trainable_parameters(NetworkImpl& network,
                                                const std::vector<Strategy*>& strategies) {
  auto parameters = network.parameters();
  for (auto* strategy : strategies) {
    for (auto& extra : strategy->extra_parameters()) parameters.push_back(extra);
  }
  return parameters;
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
  int64_t top1 = 0;
  int64_t top5 = 0;
  const int64_t total = data_.test.size();
  for (int64_t start = 0; start < total; start += options_.eval_batch_size) {
    const int64_t length = std::min(options_.eval_batch_size, total - start);
    auto images = data_.test.slice(start, length);
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
    Batch batch{augment_batch(data_.train.select(index), options_.augment),
                data_.train.labels.index_select(0, index)};

    lr = learning_rate(*state.stage, state.epoch_in_stage, step, steps);
    set_learning_rate(optimizer, lr);
    for (auto* strategy : spec.strategies) strategy->on_step_begin(state, batch);

    auto output = network.forward(batch.images);
    auto loss = torch::nn::functional::cross_entropy(output.logits, batch.labels);
    for (auto* strategy : spec.strategies) {
      auto extra = strategy->extra_loss(state, batch, output);
      if (extra.defined()) loss = loss + extra;
    }
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    for (auto* strategy : spec.strategies) strategy->on_step_end(state);

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

TrialRecord Trainer::train(const TrialSpec& spec) {
  torch::manual_seed(spec.seed);
  TrialRecord trial;
  trial.seed = spec.seed;
  trial.device = device_.str();
  const auto trial_start = Clock::now();

  TrainingPlan plan{{spec.target}};
  for (auto* strategy : spec.strategies) strategy->plan(plan);
  if (plan.stages.empty()) throw std::runtime_error("the strategies left no training stage");

  auto network = spec.build_network();
  network->to(device_);

  TrainingState state;
  state.network = network.get();
  state.device = device_;
  state.seed = spec.seed;
  state.steps_per_epoch = steps_per_epoch();
  state.build_full_precision_network = spec.build_full_precision;
  state.evaluate = [this](NetworkImpl& other) {
    auto accuracy = evaluate(other);
    return std::make_pair(accuracy.top1, accuracy.top5);
  };
  for (const auto& stage : plan.stages) state.total_epochs += stage.epochs;
  for (auto* strategy : spec.strategies) strategy->on_trial_begin(state);

  // Throughput over the whole trial counts training steps only, not evaluation.
  const int64_t images_per_epoch =
      std::min(data_.train.size(), state.steps_per_epoch * options_.batch_size);
  int64_t images = 0;
  double train_seconds = 0;
  for (size_t s = 0; s < plan.stages.size(); ++s) {
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
    for (auto* strategy : spec.strategies) strategy->on_stage_begin(state);

    for (int64_t e = 0; e < stage.epochs; ++e) {
      state.epoch_in_stage = e;
      auto record = train_epoch(*network, optimizer, state, spec);
      for (auto* strategy : spec.strategies) strategy->on_epoch_end(state, record.extra);
      images += images_per_epoch;
      train_seconds += images_per_epoch / record.images_per_second;
      trial.epochs.push_back(record);
      ++state.epoch;
      if (progress_ != nullptr) {
        const double elapsed = seconds_since(trial_start);
        const double eta = elapsed / state.epoch * (state.total_epochs - state.epoch);
        fmt::print(*progress_,
                   "{} epoch {}/{} [{} {}] loss {:.4f} train {:.2f}% test {:.2f}% top5 {:.2f}% "
                   "lr {:.4g} {:.0f} img/s ETA {}\n",
                   spec.label, record.epoch, state.total_epochs, stage.name,
                   precision_label(stage.weight_bits, stage.activation_bits), record.train_loss,
                   record.train_top1, record.test_top1, record.test_top5, record.learning_rate,
                   record.images_per_second, format_duration(eta));
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
  return trial;
}

}  // namespace lowbit
