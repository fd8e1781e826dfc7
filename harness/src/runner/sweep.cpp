#include <lowbit/layers/quantized_layers.h>
#include <lowbit/results/layout.h>
#include <lowbit/runner/claims.h>
#include <lowbit/runner/console_reporter.h>
#include <lowbit/runner/store_reporter.h>
#include <lowbit/runner/sweep.h>
#include <lowbit/training/checkpoint.h>
#include <lowbit/training/initial_weights.h>
#include <lowbit/training/trainer.h>
#include <lowbit/training/weights.h>
#include <lowbit/util/atomic_file.h>
#include <lowbit/util/cpu.h>
#include <lowbit/util/exception_message.h>

#include <ATen/detail/CUDAHooksInterface.h>
#include <boost/filesystem.hpp>
#include <fmt/format.h>
#include <torch/version.h>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <thread>

namespace lowbit {
namespace {

std::string cuda_runtime_version(torch::Device device) {
  if (!device.is_cuda()) return "";
  try {
    const long version = at::detail::getCUDAHooks().versionCUDART();
    return fmt::format("{}.{}", version / 1000, (version % 1000) / 10);
  } catch (const std::exception&) {
    return "unknown";
  }
}

/// The modules a run's components come from, with their file hashes.
nlohmann::json plugin_hashes(const RunPlan& run, const Registry& registry,
                             const PluginLoader& plugins) {
  nlohmann::json hashes = nlohmann::json::object();
  auto add = [&](ComponentKind kind, const std::string& name) {
    const auto& origin = registry.info(kind, name).origin;
    auto sha1 = plugins.sha1_of(origin);
    if (!sha1.empty()) hashes[origin] = sha1;
  };
  add(ComponentKind::quantizer, run.quantizer.name);
  for (const auto& strategy : run.strategies) add(ComponentKind::strategy, strategy.name);
  return hashes;
}

/// Whether two records of plugin hashes name the same code: the same file contents, wherever the
/// files were loaded from (a copy of the build folder, an install).
bool same_plugin_code(const nlohmann::json& recorded, const nlohmann::json& loaded) {
  auto contents = [](const nlohmann::json& hashes) {
    std::multiset<std::string> sha1s;
    for (const auto& entry : hashes.items()) sha1s.insert(entry.value().get<std::string>());
    return sha1s;
  };
  return contents(recorded) == contents(loaded);
}

/// Quantizer name and options as one comparable string.
std::string component_key(const ComponentChoice& choice) {
  return choice.name + choice.options.dump();
}

ModelSpec model_spec(const DataSplits& data) {
  return ModelSpec{data.channels, data.num_classes, data.image_size};
}

/// Every model of the experiment can take this data (AlexNet's ImageNet layout needs images of at
/// least 63x63): checked before the first trial, so that a mismatch records nothing.
void check_models_fit(const Experiment& experiment, const Registry& registry,
                      const ModelSpec& spec) {
  std::set<std::string> checked;
  for (const auto& run : experiment.runs) {
    if (!checked.insert(run.model).second) continue;
    try {
      describe_model(registry.model(run.model), spec);
    } catch (const std::exception& e) {
      throw ConfigError(
          experiment.file, "/models",
          fmt::format("model {} cannot take the data ({}x{}x{} images): {}", run.model,
                      spec.in_channels, spec.image_size, spec.image_size, exception_message(e)));
    }
  }
}

}  // namespace

std::pair<int64_t, int64_t> parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  try {
    if (slash != std::string::npos) {
      size_t used_index = 0;
      size_t used_count = 0;
      const auto index = std::stoll(text.substr(0, slash), &used_index);
      const auto count = std::stoll(text.substr(slash + 1), &used_count);
      if (used_index == slash && used_count == text.size() - slash - 1 && count >= 1 &&
          index >= 0 && index < count) {
        return {index, count};
      }
    }
  } catch (const std::exception&) {
    // Falls through to the message below.
  }
  throw std::invalid_argument(
      fmt::format("bad shard \"{}\" (allowed: \"i/N\" with 0 <= i < N, e.g. \"0/4\")", text));
}

void set_intra_op_threads(int64_t threads) {
  if (threads <= 0) threads = std::max<int64_t>(1, std::thread::hardware_concurrency());
  torch::set_num_threads(static_cast<int>(threads));
}

namespace {

/// "32W32A run 3f2a9c01b7e4 trial 0": the weights a trial starts from, as it records them.
std::string full_precision_origin(const RunPlan& source, int64_t trial_index) {
  return fmt::format("32W32A run {} trial {}", source.record.hash.substr(0, 12), trial_index);
}

std::string checkpoint_origin(const InitOptions& init) {
  return fmt::format("checkpoint {} (SHA-1 {})",
                     boost::filesystem::path(init.checkpoint).filename().string(),
                     init.checkpoint_sha1.substr(0, 12));
}

/// One sweep: the loop over its share of trials, and what training one trial needs — the trials
/// it starts from first (trained here when nobody has them, waited for when another process
/// trains them), then its own.
class Sweep {
 public:
  Sweep(const Experiment& experiment, const SweepOptions& options, const Registry& registry,
        const PluginLoader& plugins, ResultStore& store)
      : experiment_(experiment),
        options_(options),
        registry_(registry),
        plugins_(plugins),
        store_(store),
        device_(resolve_device(options.device.empty() ? experiment.device
                                                      : parse_device_choice(options.device))),
        store_reporter_(store, run_ids_),
        console_(options.progress != nullptr ? std::make_unique<ConsoleReporter>(*options.progress)
                                             : nullptr),
        reporters_(reporter_chain()) {}

  SweepSummary run();

 private:
  enum class Outcome { finished, failed, elsewhere };

  /// The database first, so that a trial is stored before anything says it finished.
  std::vector<Reporter*> reporter_chain();
  TrialContext context(size_t r, int64_t t) const;
  /// Trains trial t of run r, which this process has claimed, and records it.
  Outcome train_claimed(size_t r, int64_t t);
  /// Makes sure trial t of the 32W32A run `source` is finished: trains it here if nobody has,
  /// waits while another live process trains it. Throws when it failed.
  void require_finished(size_t source, int64_t t);
  TrialSpec make_trial_spec(const RunPlan& run, int64_t t,
                            const std::shared_ptr<const Quantizer>& quantizer);
  std::shared_ptr<NetworkImpl> build_other_network(
      const RunPlan& run, int64_t t, const std::shared_ptr<const Quantizer>& quantizer,
      const std::string& model, NetworkStart start);
  void load_full_precision_trial(NetworkImpl& network, size_t source, int64_t t);
  /// Records trial t of run r from another experiment that finished it (--reuse); false when
  /// none did with this run's plugin files and LibTorch and with its weights present.
  bool reuse_from_other_experiment(size_t r, int64_t t);
  bool weights_missing(size_t r, int64_t t) const;
  /// Trains finished trial t of the 32W32A run `source` again because its weights are missing,
  /// and says whether it repeated its record.
  void train_again(size_t source, int64_t t);
  const NamedTensors& checkpoint_tensors();
  void check_checkpoint_fits();

  const Experiment& experiment_;
  const SweepOptions& options_;
  const Registry& registry_;
  const PluginLoader& plugins_;
  ResultStore& store_;
  torch::Device device_;
  SweepContext context_;
  SweepSummary summary_;
  std::vector<int64_t> run_ids_;
  std::string database_id_;
  ModelSpec spec_;
  std::unique_ptr<DataSplits> data_;
  std::unique_ptr<Trainer> trainer_;
  std::unique_ptr<ClaimKeeper> claims_;
  std::optional<NamedTensors> checkpoint_;
  /// 32W32A trials that failed in this sweep, with why: the runs that start from them fail
  /// with that reason rather than training them again.
  std::map<std::pair<size_t, int64_t>, std::string> failed_;
  StoreReporter store_reporter_;
  std::unique_ptr<ConsoleReporter> console_;
  ReporterList reporters_;
};

std::vector<Reporter*> Sweep::reporter_chain() {
  std::vector<Reporter*> chain{&store_reporter_};
  if (console_) chain.push_back(console_.get());
  chain.insert(chain.end(), options_.reporters.begin(), options_.reporters.end());
  return chain;
}

TrialContext Sweep::context(size_t r, int64_t t) const {
  const auto& run = experiment_.runs[r];
  return {fmt::format("[run {}/{} {} {} {} trial {}/{}]", r + 1, experiment_.runs.size(), run.model,
                      run.record.method,
                      precision_label(run.record.weight_bits, run.record.activation_bits), t + 1,
                      experiment_.trials),
          r, t};
}

SweepSummary Sweep::run() {
  const int64_t threads = options_.threads >= 0 ? options_.threads : experiment_.threads;
  set_intra_op_threads(threads);
  const int64_t experiment_id =
      store_.ensure_experiment(experiment_.name, experiment_.file, experiment_.spec);
  database_id_ = store_.database_id();
  data_ = std::make_unique<DataSplits>(load_dataset(experiment_.data));
  data_->train = data_->train.to(device_);
  data_->test = data_->test.to(device_);
  context_ = SweepContext{experiment_.name,         experiment_.runs.size(),
                          experiment_.trials,       device_,
                          torch::get_num_threads(), data_->name,
                          data_->train.size(),      data_->test.size()};
  reporters_.on_sweep_begin(context_);
  trainer_ = std::make_unique<Trainer>(experiment_.training, *data_, device_, &reporters_);
  spec_ = model_spec(*data_);
  check_models_fit(experiment_, registry_, spec_);
  if (experiment_.init.kind == InitKind::checkpoint) check_checkpoint_fits();
  claims_ = std::make_unique<ClaimKeeper>(store_.path(), options_.claim_timing);
  for (const auto& run : experiment_.runs)
    run_ids_.push_back(store_.ensure_run(experiment_id, run.record));

  for (size_t r = 0; r < experiment_.runs.size(); ++r) {
    for (int64_t t = 0; t < experiment_.trials; ++t) {
      const auto position = options_.shard_by == ShardBy::trial_index
                                ? t
                                : static_cast<int64_t>(r) * experiment_.trials + t;
      if (position % options_.shard_count != options_.shard_index ||
          (options_.train_only && !options_.train_only(experiment_.runs[r], t))) {
        ++summary_.trials_elsewhere;
        continue;
      }
      const auto claim = store_.claim_trial(run_ids_[r], t, claims_->owner(),
                                            [this](const ClaimOwner& holder, double heartbeat) {
                                              return claims_->alive(holder, heartbeat);
                                            });
      if (claim.outcome == TrialClaim::Outcome::finished) {
        ++summary_.trials_skipped;
        // A sweep killed between recording the trial and removing its checkpoint left it behind.
        remove_checkpoint(trial_checkpoint_path(store_.path(), experiment_.runs[r].record.hash, t));
        reporters_.on_trial_skipped(context(r, t), claim);
        continue;
      }
      if (claim.outcome == TrialClaim::Outcome::owned_elsewhere) {
        ++summary_.trials_claimed_elsewhere;
        reporters_.on_trial_skipped(context(r, t), claim);
        continue;
      }
      if (claim.taken_over) reporters_.on_trial_taken_over(context(r, t), claim.holder);
      train_claimed(r, t);
    }
  }
  reporters_.on_sweep_end(context_, summary_);
  return summary_;
}

void Sweep::require_finished(size_t source, int64_t t) {
  const auto failed = failed_.find({source, t});
  if (failed != failed_.end()) throw std::runtime_error(failed->second);
  bool told = false;
  while (true) {
    const auto claim = store_.claim_trial(run_ids_[source], t, claims_->owner(),
                                          [this](const ClaimOwner& holder, double heartbeat) {
                                            return claims_->alive(holder, heartbeat);
                                          });
    if (claim.outcome == TrialClaim::Outcome::finished) {
      if (!weights_missing(source, t)) return;
      train_again(source, t);
      return;
    }
    if (claim.outcome == TrialClaim::Outcome::claimed) {
      reporters_.on_trial_needed_first(context(source, t));
      if (train_claimed(source, t) == Outcome::failed)
        throw std::runtime_error(failed_.at({source, t}));
      return;
    }
    if (!told) {
      reporters_.on_trial_waiting(context(source, t), claim.holder);
      told = true;
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

void Sweep::load_full_precision_trial(NetworkImpl& network, size_t source, int64_t t) {
  const auto& run = experiment_.runs[source];
  const auto path = trial_weights_path(store_.path(), run.record.hash, t);
  load_named_tensors(network, read_weights_file(path),
                     fmt::format("the weights of {} ({})", full_precision_origin(run, t), path));
}

const NamedTensors& Sweep::checkpoint_tensors() {
  if (!checkpoint_) checkpoint_ = read_state_dict(experiment_.init.checkpoint);
  return *checkpoint_;
}

/// A checkpoint that does not fit a network of the experiment is a mistake in the file: said
/// before anything trains, naming "init" and every key at fault.
void Sweep::check_checkpoint_fits() {
  std::set<std::pair<std::string, std::string>> checked;
  for (const auto& run : experiment_.runs) {
    if (!checked.insert({run.model, component_key(run.quantizer)}).second) continue;
    try {
      JsonReader options(run.quantizer.options, experiment_.file, "/quantizers");
      std::shared_ptr<const Quantizer> quantizer = registry_.quantizer(run.quantizer.name)(options);
      auto network = build_network(registry_.model(run.model), spec_, quantizer, run.precision);
      load_named_tensors(*network, checkpoint_tensors(), experiment_.init.checkpoint);
    } catch (const std::exception& e) {
      throw ConfigError(
          experiment_.file, "/init/checkpoint",
          fmt::format("{} with {}: {}", run.model, run.quantizer.name, exception_message(e)));
    }
  }
}

std::shared_ptr<NetworkImpl> Sweep::build_other_network(
    const RunPlan& run, int64_t t, const std::shared_ptr<const Quantizer>& quantizer,
    const std::string& model, NetworkStart start) {
  auto plain = [&] {
    return build_network(registry_.model(model), spec_, nullptr, PrecisionPolicy{});
  };
  if (start == NetworkStart::seed) return plain();
  switch (run.init) {
    case InitKind::scratch:
      if (start == NetworkStart::pretrained) {
        throw std::runtime_error(fmt::format(
            "a trained {} was asked for, but this run starts from scratch (\"init\"): give the "
            "strategy a checkpoint, or start the experiment from full precision",
            model));
      }
      return plain();
    case InitKind::checkpoint: {
      if (model != run.model) {
        throw std::runtime_error(fmt::format(
            "a trained {} was asked for, but the experiment's checkpoint is a {}: give the "
            "strategy a checkpoint of its own",
            model, run.model));
      }
      auto network = plain();
      load_named_tensors(*network, checkpoint_tensors(), experiment_.init.checkpoint);
      return network;
    }
    case InitKind::full_precision: {
      const auto source = full_precision_run(experiment_.runs, model, run.quantizer);
      if (!source) {
        throw std::runtime_error(fmt::format(
            "a trained {} was asked for, but the experiment has no 32W32A run of {} with {} to "
            "start it from: add {} to /models, or give the strategy a checkpoint",
            model, model, run.quantizer.name, model));
      }
      // The 32W32A run's own network (the quantizer's structure, at full precision), so that
      // every weight of that trial fits.
      auto network = build_network(
          registry_.model(model), spec_, quantizer,
          PrecisionPolicy{kFullPrecisionBits, kFullPrecisionBits, run.precision.quantize_all});
      // train_claimed finished it before the trial began, if the strategy named the model in
      // models_needed(); training it here, inside another trial, would disturb that trial.
      if (!store_.trial_finished(run_ids_[*source], t)) {
        throw std::runtime_error(fmt::format(
            "a trained {} was asked for, but {} is not finished (does the strategy list {} in "
            "models_needed()?)",
            model, full_precision_origin(experiment_.runs[*source], t), model));
      }
      load_full_precision_trial(*network, *source, t);
      return network;
    }
  }
  throw std::logic_error("unknown init");
}

TrialSpec Sweep::make_trial_spec(const RunPlan& run, int64_t t,
                                 const std::shared_ptr<const Quantizer>& quantizer) {
  TrialSpec trial_spec;
  trial_spec.seed = experiment_.seed + static_cast<uint64_t>(t);
  trial_spec.weights_path = trial_weights_path(store_.path(), run.record.hash, t);
  save_model_spec(spec_, model_spec_path(store_.path(), run.record.hash));
  trial_spec.checkpoint_path = trial_checkpoint_path(store_.path(), run.record.hash, t);
  trial_spec.database_id = database_id_;
  trial_spec.model = run.model;
  trial_spec.quantizer = quantizer;
  trial_spec.target = Stage{"main", run.epochs, run.learning_rate, run.precision.weight_bits,
                            run.precision.activation_bits};
  const auto& model_factory = registry_.model(run.model);
  trial_spec.build_network = [this, &model_factory, &run, quantizer] {
    return build_network(model_factory, spec_, quantizer, run.precision);
  };
  trial_spec.build_full_precision = [this, &run, t, quantizer](const std::string& model,
                                                               NetworkStart start) {
    return build_other_network(run, t, quantizer, model, start);
  };
  if (run.init == InitKind::full_precision) {
    const auto source = run.full_precision_source;
    trial_spec.started_from = full_precision_origin(experiment_.runs[source], t);
    trial_spec.load_initial_weights = [this, source, t](NetworkImpl& network) {
      load_full_precision_trial(network, source, t);
    };
  } else if (run.init == InitKind::checkpoint) {
    trial_spec.started_from = checkpoint_origin(experiment_.init);
    trial_spec.load_initial_weights = [this](NetworkImpl& network) {
      load_named_tensors(network, checkpoint_tensors(), experiment_.init.checkpoint);
    };
  }
  return trial_spec;
}

bool Sweep::weights_missing(size_t r, int64_t t) const {
  return !boost::filesystem::exists(
      trial_weights_path(store_.path(), experiment_.runs[r].record.hash, t));
}

void Sweep::train_again(size_t source, int64_t t) {
  const auto run_id = run_ids_[source];
  TrialRecord recorded;
  for (auto& trial : store_.trials(run_id)) {
    if (trial.trial_index == t) recorded = std::move(trial);
  }
  store_.reopen_trial(run_id, t);
  const auto claim = store_.claim_trial(run_id, t, claims_->owner(),
                                        [this](const ClaimOwner& holder, double heartbeat) {
                                          return claims_->alive(holder, heartbeat);
                                        });
  // Another process reopened it first and trains it: wait for it as for any source.
  if (claim.outcome != TrialClaim::Outcome::claimed) return require_finished(source, t);
  reporters_.on_trial_needed_first(context(source, t));
  if (train_claimed(source, t) == Outcome::failed)
    throw std::runtime_error(failed_.at({source, t}));
  for (const auto& again : store_.trials(run_id)) {
    if (again.trial_index == t) {
      reporters_.on_source_trained_again(
          context(source, t),
          trial_weights_path(store_.path(), experiment_.runs[source].record.hash, t), recorded,
          again);
    }
  }
}

bool Sweep::reuse_from_other_experiment(size_t r, int64_t t) {
  const auto& run = experiment_.runs[r];
  if (!boost::filesystem::exists(trial_weights_path(store_.path(), run.record.hash, t)))
    return false;
  const auto hashes = plugin_hashes(run, registry_, plugins_);
  for (const auto& other : store_.runs()) {
    if (other.record.hash != run.record.hash || other.experiment == experiment_.name) continue;
    for (auto& trial : store_.trials(other.id)) {
      if (trial.trial_index != t || trial.status != TrialStatus::finished) continue;
      if (!same_plugin_code(trial.plugin_hashes, hashes) || trial.torch_version != TORCH_VERSION)
        continue;
      reporters_.on_trial_reused(context(r, t), other.experiment);
      try {
        reporters_.on_trial_end(context(r, t), trial);
      } catch (const TrialAlreadyFinished& e) {
        reporters_.on_trial_not_recorded(context(r, t), e.what());
      }
      ++summary_.trials_reused;
      return true;
    }
  }
  return false;
}

Sweep::Outcome Sweep::train_claimed(size_t r, int64_t t) {
  const auto& run = experiment_.runs[r];
  const int64_t run_id = run_ids_[r];
  if (options_.reuse_other_experiments && reuse_from_other_experiment(r, t))
    return Outcome::finished;
  const auto checkpoint_path = trial_checkpoint_path(store_.path(), run.record.hash, t);
  TrialRecord trial;
  try {
    JsonReader quantizer_options(run.quantizer.options, experiment_.file, "/quantizers");
    std::shared_ptr<const Quantizer> quantizer =
        registry_.quantizer(run.quantizer.name)(quantizer_options);
    std::vector<std::unique_ptr<Strategy>> strategies;
    auto trial_spec = make_trial_spec(run, t, quantizer);
    trial_spec.trial = context(r, t);
    std::vector<std::string> models{run.model};
    for (const auto& choice : run.strategies) {
      JsonReader strategy_options(choice.options, experiment_.file, "/strategies");
      strategies.push_back(registry_.strategy(choice.name)(strategy_options));
      trial_spec.strategies.push_back(strategies.back().get());
      for (const auto& model : strategies.back()->models_needed()) models.push_back(model);
    }
    // What the trial and its strategies' networks (a deeper KD teacher) start from is trained,
    // or waited for, before the trial itself.
    if (run.init == InitKind::full_precision) {
      for (const auto& model : models) {
        if (const auto source = full_precision_run(experiment_.runs, model, run.quantizer)) {
          require_finished(*source, t);
        }
      }
    }
    trial = trainer_->train(trial_spec);
    ++summary_.trials_run;
  } catch (const StorageError&) {
    // Not the trial's fault, and every trial after it would fail the same way: stop the
    // sweep with the database as it was; the next run resumes from the last checkpoint.
    store_.release_claim(run_id, t, claims_->owner().token);
    throw;
  } catch (const std::exception& e) {
    // A failed trial is recorded with its reason and the sweep goes on.
    trial = TrialRecord{};
    trial.status = TrialStatus::failed;
    trial.error = exception_message(e);
    trial.seed = experiment_.seed + static_cast<uint64_t>(t);
    trial.device = device_description(device_);
    ++summary_.trials_failed;
    reporters_.on_trial_failed(context(r, t), trial.error);
    failed_[{r, t}] = fmt::format("the trial it starts from, {}, failed: {}",
                                  full_precision_origin(run, t), trial.error);
  }
  trial.trial_index = t;
  trial.torch_version = TORCH_VERSION;
  trial.cuda_version = cuda_runtime_version(device_);
  trial.cpu = cpu_model_name();
  trial.plugin_hashes = plugin_hashes(run, registry_, plugins_);
  try {
    reporters_.on_trial_end(context(r, t), trial);
  } catch (const TrialAlreadyFinished& e) {
    // Another process took this trial over (our claim had gone stale) and finished first;
    // its record stands, and the sweep goes on.
    reporters_.on_trial_not_recorded(context(r, t), e.what());
    return Outcome::elsewhere;
  }
  remove_checkpoint(checkpoint_path);
  return trial.status == TrialStatus::finished ? Outcome::finished : Outcome::failed;
}

}  // namespace

SweepSummary SweepRunner::run(const Experiment& experiment, const SweepOptions& options) {
  return Sweep(experiment, options, registry_, plugins_, store_).run();
}

}  // namespace lowbit
