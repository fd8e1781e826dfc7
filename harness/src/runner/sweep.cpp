#include <lowbit/layers/quantized_layers.h>
#include <lowbit/results/layout.h>
#include <lowbit/runner/claims.h>
#include <lowbit/runner/sweep.h>
#include <lowbit/training/checkpoint.h>
#include <lowbit/training/trainer.h>
#include <lowbit/training/weights.h>
#include <lowbit/util/atomic_file.h>
#include <lowbit/util/exception_message.h>

#include <ATen/detail/CUDAHooksInterface.h>
#include <fmt/format.h>
#include <fmt/ostream.h>
#include <torch/version.h>

#include <chrono>
#include <set>
#include <thread>
#include <ctime>

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

ModelSpec model_spec(const DataSplits& data) {
  return ModelSpec{data.channels, data.num_classes, data.image_size};
}

/// Every model of the experiment can take this data (AlexNet's ImageNet layout needs images of at
/// least 63x63): checked before the first trial, so that a mismatch records nothing.
void check_models_fit(const Experiment& experiment, const Registry& registry, const ModelSpec& spec) {
  std::set<std::string> checked;
  for (const auto& run : experiment.runs) {
    if (!checked.insert(run.model).second) continue;
    try {
      describe_model(registry.model(run.model), spec);
    } catch (const std::exception& e) {
      throw ConfigError(experiment.file, "/models",
                        fmt::format("model {} cannot take the data ({}x{}x{} images): {}",
                                    run.model, spec.in_channels, spec.image_size, spec.image_size,
                                    exception_message(e)));
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
  throw std::invalid_argument(fmt::format(
      "bad shard \"{}\" (allowed: \"i/N\" with 0 <= i < N, e.g. \"0/4\")", text));
}

void set_intra_op_threads(int64_t threads) {
  if (threads <= 0) threads = std::max<int64_t>(1, std::thread::hardware_concurrency());
  torch::set_num_threads(static_cast<int>(threads));
}

torch::Device resolve_device(const std::string& requested) {
  if (requested == "cpu") return torch::kCPU;
  if (requested == "cuda") {
    if (!torch::cuda::is_available()) {
      throw std::runtime_error(
          "device \"cuda\" was asked for, but this LibTorch sees no GPU (allowed here: auto, cpu)");
    }
    return torch::kCUDA;
  }
  if (requested == "auto") return torch::cuda::is_available() ? torch::kCUDA : torch::kCPU;
  throw std::invalid_argument(fmt::format("unknown device \"{}\" (allowed: auto, cpu, cuda)", requested));
}

SweepSummary SweepRunner::run(const Experiment& experiment, const SweepOptions& options) {
  SweepSummary summary;
  std::ostream* out = options.progress;
  const auto device = resolve_device(options.device.empty() ? experiment.device : options.device);
  const int64_t threads = options.threads >= 0 ? options.threads : experiment.threads;
  set_intra_op_threads(threads);

  const int64_t experiment_id =
      store_.ensure_experiment(experiment.name, experiment.file, experiment.spec);
  const std::string database_id = store_.database_id();

  const auto data = [&] {
    auto splits = load_dataset(experiment.data);
    splits.train = splits.train.to(device);
    splits.test = splits.test.to(device);
    return splits;
  }();
  if (out) {
    fmt::print(*out, "{}: {} runs x {} trials on {} ({} threads), data {} ({} train / {} test)\n",
               experiment.name, experiment.runs.size(), experiment.trials, device.str(),
               torch::get_num_threads(), data.name, data.train.size(), data.test.size());
  }
  Trainer trainer(experiment.training, data, device, out);
  const ModelSpec spec = model_spec(data);
  check_models_fit(experiment, registry_, spec);
  ClaimKeeper claims(store_.path(), options.claim_timing);

  for (size_t r = 0; r < experiment.runs.size(); ++r) {
    const auto& run = experiment.runs[r];
    const int64_t run_id = store_.ensure_run(experiment_id, run.record);
    for (int64_t t = 0; t < experiment.trials; ++t) {
      const auto position = static_cast<int64_t>(r) * experiment.trials + t;
      if (position % options.shard_count != options.shard_index) {
        ++summary.trials_elsewhere;
        continue;
      }
      const auto label = fmt::format("[run {}/{} {} {} {} trial {}/{}]", r + 1,
                                     experiment.runs.size(), run.model, run.record.method,
                                     precision_label(run.record.weight_bits, run.record.activation_bits),
                                     t + 1, experiment.trials);
      // A killed sweep leaves this trial's last epoch checkpoint; the trainer continues from it.
      const auto checkpoint_path = trial_checkpoint_path(store_.path(), run.record.hash, t);
      const auto claim = store_.claim_trial(
          run_id, t, claims.owner(),
          [&claims](const ClaimOwner& holder, double heartbeat) { return claims.alive(holder, heartbeat); });
      if (claim.outcome == TrialClaim::Outcome::finished) {
        ++summary.trials_skipped;
        // A sweep killed between recording the trial and removing its checkpoint left it behind.
        remove_checkpoint(checkpoint_path);
        if (out) fmt::print(*out, "{} already finished, skipped\n", label);
        continue;
      }
      if (claim.outcome == TrialClaim::Outcome::owned_elsewhere) {
        ++summary.trials_claimed_elsewhere;
        if (out) fmt::print(*out, "{} being trained by {}, skipped\n", label, describe(claim.holder));
        continue;
      }
      if (claim.taken_over && out) {
        fmt::print(*out, "{} taking over from {}, which stopped\n", label, describe(claim.holder));
      }
      TrialRecord trial;
      try {
        JsonReader quantizer_options(run.quantizer.options, experiment.file, "/quantizers");
        std::shared_ptr<const Quantizer> quantizer =
            registry_.quantizer(run.quantizer.name)(quantizer_options);
        std::vector<std::unique_ptr<Strategy>> strategies;
        TrialSpec trial_spec;
        for (const auto& choice : run.strategies) {
          JsonReader strategy_options(choice.options, experiment.file, "/strategies");
          strategies.push_back(registry_.strategy(choice.name)(strategy_options));
          trial_spec.strategies.push_back(strategies.back().get());
        }
        trial_spec.seed = experiment.seed + static_cast<uint64_t>(t);
        trial_spec.label = label;
        trial_spec.weights_path = trial_weights_path(store_.path(), run.record.hash, t);
        save_model_spec(spec, model_spec_path(store_.path(), run.record.hash));
        trial_spec.checkpoint_path = checkpoint_path;
        trial_spec.database_id = database_id;
        trial_spec.model = run.model;
        trial_spec.quantizer = quantizer;
        trial_spec.target = Stage{"main", experiment.training.epochs,
                                  experiment.training.optimizer.learning_rate,
                                  run.precision.weight_bits, run.precision.activation_bits};
        const auto& model_factory = registry_.model(run.model);
        trial_spec.build_network = [&, quantizer] {
          return build_network(model_factory, spec, quantizer, run.precision);
        };
        trial_spec.build_full_precision = [&](const std::string& model) {
          return build_network(registry_.model(model), spec, nullptr, PrecisionPolicy{});
        };
        trial = trainer.train(trial_spec);
        ++summary.trials_run;
      } catch (const StorageError&) {
        // Not the trial's fault, and every trial after it would fail the same way: stop the
        // sweep with the database as it was; the next run resumes from the last checkpoint.
        store_.release_claim(run_id, t, claims.owner().token);
        throw;
      } catch (const std::exception& e) {
        // A failed trial is recorded with its reason and the sweep goes on.
        trial = TrialRecord{};
        trial.status = "failed";
        trial.error = exception_message(e);
        trial.seed = experiment.seed + static_cast<uint64_t>(t);
        trial.device = device_description(device);
        ++summary.trials_failed;
        if (out) fmt::print(*out, "{} FAILED: {}\n", label, trial.error);
      }
      trial.trial_index = t;
      trial.torch_version = TORCH_VERSION;
      trial.cuda_version = cuda_runtime_version(device);
      trial.plugin_hashes = plugin_hashes(run, registry_, plugins_);
      try {
        store_.record_trial(run_id, trial);
      } catch (const TrialAlreadyFinished& e) {
        // Another process took this trial over (our claim had gone stale) and finished first;
        // its record stands, and the sweep goes on.
        if (out) fmt::print(*out, "{} not recorded: {}\n", label, e.what());
        continue;
      }
      remove_checkpoint(checkpoint_path);
      if (out && trial.status == "finished") {
        fmt::print(*out, "{} finished: top-1 {:.2f}% top-5 {:.2f}% in {:.1f}s ({:.0f} img/s)\n",
                   label, trial.top1, trial.top5, trial.wall_seconds, trial.images_per_second);
      }
    }
  }
  return summary;
}

}  // namespace lowbit
