// Where trials start ("init"): the experiment's own 32W32A trial with the same index, a state
// dict saved from Python, or the seed; how that enters a run's identity, the order of the sweep,
// what each trial records, and the errors that name every key that does not fit.
#include "test_support.h"

#include <lowbit/experiment/experiment.h>
#include <lowbit/layers/quantized_layers.h>
#include <lowbit/results/layout.h>
#include <lowbit/results/store.h>
#include <lowbit/runner/sweep.h>
#include <lowbit/sdk/error.h>
#include <lowbit/training/initial_weights.h>
#include <lowbit/training/weights.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <limits>
#include <sstream>
#include <thread>

namespace {

using Catch::Contains;
using lowbit::InitKind;
using lowbit::testing::shared_components;
using lowbit::testing::TemporaryFolder;
using lowbit::testing::tiny_experiment;
using json = nlohmann::json;

lowbit::Experiment parse(const json& spec, const std::string& file = "init.json") {
  return lowbit::parse_experiment(spec, file, shared_components().registry);
}

std::string parse_error(const json& spec, const std::string& file = "init.json") {
  try {
    parse(spec, file);
  } catch (const lowbit::ConfigError& e) {
    return e.what();
  }
  return "";
}

const lowbit::RunPlan& run_of(const lowbit::Experiment& experiment, const std::string& method,
                              int bits) {
  for (const auto& run : experiment.runs) {
    if (run.record.method == method && run.precision.weight_bits == bits) return run;
  }
  throw std::runtime_error("no run " + method);
}

std::shared_ptr<lowbit::NetworkImpl> resnet20(bool quantized, const lowbit::ModelSpec& spec) {
  json none = json::object();
  auto quantizer = shared_components().registry.quantizer("dorefa")(lowbit::JsonReader(none, "t"));
  return lowbit::build_network(
      shared_components().registry.model("resnet20"), spec,
      quantized ? std::shared_ptr<const lowbit::Quantizer>(std::move(quantizer)) : nullptr,
      quantized ? lowbit::PrecisionPolicy{2, 2, false} : lowbit::PrecisionPolicy{});
}

lowbit::NamedTensors state_of(torch::nn::Module& module) {
  lowbit::NamedTensors tensors;
  for (const auto& item : module.named_parameters())
    tensors[item.key()] = item.value().detach().clone();
  for (const auto& item : module.named_buffers())
    tensors[item.key()] = item.value().detach().clone();
  return tensors;
}

/// Every parameter of `module` filled with `value`.
void fill_parameters(torch::nn::Module& module, float value) {
  torch::NoGradGuard no_grad;
  for (auto& parameter : module.parameters()) parameter.fill_(value);
}

bool parameters_equal(torch::nn::Module& module, float value) {
  for (const auto& parameter : module.parameters()) {
    if (!torch::all(parameter == value).item<bool>()) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("init defaults to full_precision with a 32W32A row, and enters the run's identity",
          "[init]") {
  auto spec = tiny_experiment();
  spec["precisions"] = {"2W2A", "32W32A"};  // the 32W32A run still trains first
  spec["strategies"] = json::parse(R"([[], ["kd"]])");
  const auto experiment = parse(spec);
  CHECK(experiment.init.kind == InitKind::full_precision);
  REQUIRE(experiment.runs.size() == 3);
  CHECK(experiment.runs[0].record.weight_bits == 32);
  CHECK(experiment.runs[0].is_full_precision_source);
  CHECK(experiment.runs[0].init == InitKind::scratch);
  for (size_t i = 1; i < experiment.runs.size(); ++i) {
    const auto& run = experiment.runs[i];
    CHECK(run.init == InitKind::full_precision);
    CHECK(run.full_precision_source == 0);
    CHECK(run.record.config.at("init").at("full_precision") == experiment.runs[0].record.hash);
  }
  // The 32W32A row is the pretrained model: no strategy trains it, and that is no point of the
  // matrix to list as skipped.
  for (const auto& run : experiment.runs) {
    CHECK_FALSE((run.record.weight_bits == 32 && !run.strategies.empty()));
  }
  CHECK(experiment.skipped.empty());

  // From scratch, a run's identity is what it was before "init" existed.
  auto scratch = spec;
  scratch["init"] = "scratch";
  auto without_full_precision = spec;
  without_full_precision["precisions"] = {"2W2A"};
  const auto scratch_experiment = parse(scratch);
  const auto quantized_only = parse(without_full_precision);
  const auto& from_scratch = run_of(scratch_experiment, "dorefa", 2);
  CHECK(from_scratch.init == InitKind::scratch);
  CHECK(from_scratch.record.config.count("init") == 0);
  CHECK(from_scratch.record.hash == run_of(quantized_only, "dorefa", 2).record.hash);
  CHECK(from_scratch.record.hash != run_of(experiment, "dorefa", 2).record.hash);
  CHECK(scratch_experiment.skipped.empty());
  CHECK(quantized_only.init.kind == InitKind::scratch);
}

TEST_CASE("the 32W32A rows can train with epochs and lr of their own", "[init]") {
  auto spec = tiny_experiment();
  spec["training"]["epochs"] = 3;
  spec["training"]["optimizer"]["lr"] = 0.005;  // the quantized rows fine-tune
  const auto plain = parse(spec);
  spec["init"] = json::parse(R"({"full_precision": {"epochs": 7, "lr": 0.1}})");
  const auto own = parse(spec);
  REQUIRE(own.runs.size() == 2);
  CHECK(own.init.kind == InitKind::full_precision);
  CHECK(own.runs[0].epochs == 7);
  CHECK(own.runs[0].learning_rate == 0.1);
  CHECK(own.runs[0].record.config["training"]["epochs"] == 7);
  CHECK(own.runs[0].record.hash != plain.runs[0].record.hash);
  CHECK(own.runs[1].epochs == 3);
  CHECK(own.runs[1].learning_rate == 0.005);
  // The quantized run's identity follows its source's.
  CHECK(own.runs[1].record.config["init"]["full_precision"] == own.runs[0].record.hash);
  CHECK(own.runs[1].record.hash != plain.runs[1].record.hash);
  spec["init"] = json::parse(R"({"full_precision": {"epochs": 0}})");
  CHECK_THAT(parse_error(spec), Contains("/init/full_precision/epochs"));
  spec["init"] = json::parse(R"({"full_precision": {"momentum": 0.5}})");
  CHECK_THAT(parse_error(spec), Contains("/init/full_precision") && Contains("momentum"));
}

TEST_CASE("init errors name the field and what is allowed", "[init]") {
  auto spec = tiny_experiment();
  spec["precisions"] = {"2W2A"};
  spec["init"] = "full_precision";
  CHECK_THAT(parse_error(spec), Contains("/init") && Contains("no 32W32A"));
  spec["init"] = "pretrained";
  CHECK_THAT(parse_error(spec), Contains("/init") && Contains("scratch, full_precision"));
  spec["init"] = 3;
  CHECK_THAT(parse_error(spec), Contains("/init") && Contains("{\"checkpoint\": \"file.pt\"}"));
  spec["init"] = {{"checkpoint", "missing.pt"}};
  CHECK_THAT(parse_error(spec), Contains("/init/checkpoint") && Contains("no readable file"));
  spec["init"] = {{"checkpoint", "a.pt"}, {"strict", false}};
  CHECK_THAT(parse_error(spec), Contains("/init"));

  // A quantized run without a 32W32A run of its model and quantizer to start from.
  auto no_source = tiny_experiment();
  no_source["strategies"] = json::parse(R"([["kd"]])");
  CHECK_THAT(parse_error(no_source), Contains("/init") && Contains("dorefa+KD") &&
                                         Contains("no 32W32A run of resnet20 with dorefa"));
}

TEST_CASE("a checkpoint's identity is its content, found beside the experiment file", "[init]") {
  TemporaryFolder folder;
  for (const auto* name : {"a.pt", "b.pt"}) std::ofstream(folder.file(name)) << "same bytes";
  auto spec = tiny_experiment();
  spec["init"] = {{"checkpoint", "a.pt"}};
  const auto file = folder.file("experiment.json");
  const auto a = parse(spec, file);
  CHECK(a.init.kind == InitKind::checkpoint);
  CHECK(a.init.checkpoint == folder.file("a.pt"));
  spec["init"] = {{"checkpoint", "b.pt"}};
  const auto b = parse(spec, file);
  REQUIRE(a.runs.size() == b.runs.size());
  for (size_t i = 0; i < a.runs.size(); ++i) {
    CHECK(a.runs[i].init == InitKind::checkpoint);  // every run, the 32W32A one too
    CHECK(a.runs[i].record.hash == b.runs[i].record.hash);
  }
  std::ofstream(folder.file("b.pt")) << "other bytes";
  CHECK(parse(spec, file).runs[0].record.hash != a.runs[0].record.hash);
}

TEST_CASE("loading by name keeps quantizer state and lists every key that does not fit", "[init]") {
  const lowbit::ModelSpec spec{1, 4, 8};
  torch::manual_seed(3);
  auto full_precision = resnet20(false, spec);
  fill_parameters(*full_precision, 0.5F);
  auto quantized = resnet20(true, spec);
  lowbit::load_named_tensors(*quantized, state_of(*full_precision), "test source");
  CHECK(parameters_equal(*quantized, 0.5F));

  // torchvision's names for the projection shortcut are the zoo's.
  auto renamed = state_of(*full_precision);
  for (const auto* suffix : {"weight", "running_mean"}) {
    const std::string ours = std::string("layer2.0.shortcut_bn.") + suffix;
    renamed[std::string("layer2.0.downsample.1.") + suffix] = renamed.at(ours);
    renamed.erase(ours);
  }
  renamed["layer2.0.downsample.0.weight"] = renamed.at("layer2.0.shortcut.weight");
  renamed.erase("layer2.0.shortcut.weight");
  auto other = resnet20(false, spec);
  lowbit::load_named_tensors(*other, renamed, "torchvision names");
  CHECK(parameters_equal(*other, 0.5F));

  auto broken = state_of(*full_precision);
  broken.erase("layer1.0.conv1.weight");
  broken["fc.weight"] = torch::zeros({7, 64});
  broken["extra.weight"] = torch::zeros({1});
  try {
    lowbit::load_named_tensors(*other, broken, "broken.pt");
    FAIL("a source that does not fit was loaded");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Contains("broken.pt") && Contains("missing: layer1.0.conv1.weight") &&
                             Contains("another shape: fc.weight ([7, 64] there, [4, 64] here)") &&
                             Contains("not in the network: extra.weight"));
  }
}

TEST_CASE("a state dict saved from Python loads, an OrderedDict is refused with the fix",
          "[init][python]") {
  const std::string python = LOWBIT_PYTHON3;
  if (python.empty() ||
      lowbit::testing::run_shell("'" + python + "' -c 'import torch'").exit_code != 0) {
    LOWBIT_SKIP("no python3 with torch (Debian: python3-torch)");
  }
  TemporaryFolder folder;
  const auto plain = folder.file("plain.pt");
  const auto ordered = folder.file("ordered.pt");
  const auto script = fmt::format(
      "import torch\n"
      "m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))\n"
      "torch.nn.init.constant_(m[0].weight, 0.25)\n"
      "torch.save(dict(m.state_dict()), '{}')\n"
      "torch.save(m.state_dict(), '{}')\n",
      plain, ordered);
  std::ofstream(folder.file("save.py")) << script;
  REQUIRE(
      lowbit::testing::run_shell("'" + python + "' '" + folder.file("save.py") + "'").exit_code ==
      0);

  const auto tensors = lowbit::read_state_dict(plain);
  CHECK(tensors.size() == 7);  // conv weight and bias, BN weight, bias and three buffers
  REQUIRE(tensors.count("0.weight") == 1);
  CHECK(torch::all(tensors.at("0.weight") == 0.25).item<bool>());
  CHECK(tensors.at("1.num_batches_tracked").dim() == 0);
  CHECK_THROWS_WITH(lowbit::read_state_dict(ordered),
                    Contains(ordered) && Contains("torch.save(dict(model.state_dict())"));
}

/// A results database in a temporary folder, and a sweep runner on it.
struct SweepOnDisk {
  TemporaryFolder folder;
  std::string db = folder.file("results.db");
  lowbit::ResultStore store{db};
  lowbit::SweepRunner runner{shared_components().registry, shared_components().plugins, store};
};

/// Trains only run `index` of the experiment (one trial per run): shard `index` of runs.size().
lowbit::SweepSummary train_run(lowbit::SweepRunner& runner, const lowbit::Experiment& experiment,
                               size_t index) {
  lowbit::SweepOptions options;
  options.shard_index = static_cast<int64_t>(index);
  options.shard_count = static_cast<int64_t>(experiment.runs.size());
  return runner.run(experiment, options);
}

lowbit::TrialRecord only_trial(lowbit::ResultStore& store, const lowbit::Experiment& experiment,
                               size_t index) {
  const auto id = store.ensure_experiment(experiment.name, experiment.file, experiment.spec);
  const auto trials = store.trials(store.ensure_run(id, experiment.runs[index].record));
  REQUIRE(trials.size() == 1);
  return trials[0];
}

TEST_CASE("a quantized trial starts from the 32W32A trial with its index, trained first",
          "[init]") {
  auto spec = tiny_experiment("init_sweep");
  spec["trials"] = 1;
  spec["training"]["epochs"] = 1;
  spec["training"]["optimizer"]["lr"] = 0.0;  // weights stay where they started
  const auto experiment = parse(spec);
  REQUIRE(experiment.runs.size() == 2);
  const auto& source = experiment.runs[0];
  const lowbit::ModelSpec model_spec{1, 4, 8};

  SECTION("the trial it needs is trained first when nobody has it") {
    SweepOnDisk sweep;
    auto& [folder, db, store, runner] = sweep;
    const auto summary = train_run(runner, experiment, 1);
    CHECK(summary.trials_run == 2);
    CHECK(summary.trials_failed == 0);
    const auto trial = only_trial(store, experiment, 1);
    CHECK(trial.started_from == "32W32A run " + source.record.hash.substr(0, 12) + " trial 0");
    CHECK(trial.epochs_trained == 1);
    CHECK(trial.images_seen == 64);  // 2 steps of 32
    CHECK(only_trial(store, experiment, 0).started_from.empty());
  }
  SECTION("sharded by trial index, a shard holds what its trials start from") {
    SweepOnDisk sweep;
    auto& [folder, db, store, runner] = sweep;
    auto two = spec;
    two["trials"] = 2;
    const auto two_trials = parse(two);
    lowbit::SweepOptions second_index;
    second_index.shard_index = 1;
    second_index.shard_count = 2;
    second_index.shard_by = lowbit::ShardBy::trial_index;
    const auto summary = runner.run(two_trials, second_index);
    CHECK(summary.trials_run == 2);  // trial 1 of the 32W32A run, then trial 1 of the 2W2A run
    CHECK(summary.trials_elsewhere == 2);
    const auto id = store.ensure_experiment(two_trials.name, two_trials.file, two_trials.spec);
    const auto quantized = store.trials(store.ensure_run(id, two_trials.runs[1].record));
    REQUIRE(quantized.size() == 1);
    CHECK(quantized[0].trial_index == 1);
    CHECK_THAT(quantized[0].started_from, Contains("trial 1"));
  }
  SECTION("it loads that trial's weights file") {
    SweepOnDisk sweep;
    auto& [folder, db, store, runner] = sweep;
    train_run(runner, experiment, 0);
    auto filled = resnet20(false, model_spec);
    fill_parameters(*filled, 0.5F);
    lowbit::save_weights(*filled, lowbit::trial_weights_path(db, source.record.hash, 0));
    CHECK(train_run(runner, experiment, 1).trials_failed == 0);
    auto trained = resnet20(true, model_spec);
    lowbit::load_weights(*trained,
                         lowbit::trial_weights_path(db, experiment.runs[1].record.hash, 0));
    CHECK(parameters_equal(*trained, 0.5F));  // lr 0: as it started
  }
  SECTION("it waits while another live process trains that trial") {
    TemporaryFolder folder;
    const auto db = folder.file("results.db");
    lowbit::ResultStore other(db);
    const auto id = other.ensure_experiment(experiment.name, experiment.file, experiment.spec);
    const auto source_id = other.ensure_run(id, source.record);
    const lowbit::ClaimOwner elsewhere{"another-host", 1, "another-token"};
    REQUIRE(other
                .claim_trial(source_id, 0, elsewhere,
                             [](const lowbit::ClaimOwner&, double) { return false; })
                .outcome == lowbit::TrialClaim::Outcome::claimed);
    std::ostringstream progress;
    lowbit::SweepSummary summary;
    std::thread sweep([&] {
      lowbit::ResultStore store(db);
      lowbit::SweepRunner runner(shared_components().registry, shared_components().plugins, store);
      lowbit::SweepOptions options;
      options.shard_index = 1;
      options.shard_count = 2;
      options.progress = &progress;
      summary = runner.run(experiment, options);
    });
    // The sweep claims its own trial, then waits for the one it starts from: give it that claim
    // and two more seconds, however slow the machine.
    const auto sweep_claims = "SELECT COUNT(*) FROM claims WHERE token != 'another-token'";
    for (int i = 0; i < 600 && lowbit::testing::query_integer(db, sweep_claims) < 1; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    CHECK_FALSE(other.trial_finished(source_id, 0));     // still waiting
    other.release_claim(source_id, 0, elsewhere.token);  // that process gives it up
    sweep.join();
    CHECK_THAT(progress.str(), Contains("waiting for pid 1 on another-host"));
    CHECK(summary.trials_run == 2);  // then trains it itself, and its own trial
    CHECK(other.trial_finished(source_id, 0));
  }
}

TEST_CASE("a deeper KD teacher starts from its own model's 32W32A trial", "[init]") {
  auto spec = tiny_experiment("init_teacher");
  spec["trials"] = 1;
  spec["training"]["epochs"] = 1;
  spec["models"] = {"resnet20", "resnet32"};
  spec["strategies"] = json::parse(
      R"([[], [{"name": "kd", "options": {"loss": "posterior", "teacher": "resnet32"}}]])");
  const auto experiment = parse(spec);
  auto index_of = [&](const std::string& model, const std::string& method, int bits) {
    for (size_t i = 0; i < experiment.runs.size(); ++i) {
      const auto& run = experiment.runs[i];
      if (run.model == model && run.record.method == method && run.precision.weight_bits == bits)
        return i;
    }
    FAIL("no run " << model << " " << method);
    return size_t{0};
  };
  SweepOnDisk sweep;
  auto& [folder, db, store, runner] = sweep;
  const auto teacher_source = index_of("resnet32", "dorefa", 32);
  train_run(runner, experiment, index_of("resnet20", "dorefa", 32));
  train_run(runner, experiment, teacher_source);

  // A teacher loaded from a 32W32A ResNet-32 trial whose classifier is NaN makes the student's
  // loss NaN; the student itself starts from the ResNet-20 trial, which is sound.
  const lowbit::ModelSpec model_spec{1, 4, 8};
  auto poisoned = lowbit::build_network(shared_components().registry.model("resnet32"), model_spec,
                                        nullptr, lowbit::PrecisionPolicy{});
  const auto path = lowbit::trial_weights_path(db, experiment.runs[teacher_source].record.hash, 0);
  lowbit::load_weights(*poisoned, path);
  {
    torch::NoGradGuard no_grad;
    poisoned->named_parameters()["fc.bias"].fill_(std::numeric_limits<float>::quiet_NaN());
  }
  lowbit::save_weights(*poisoned, path);
  const auto student = index_of("resnet20", "dorefa+KD", 2);
  CHECK(train_run(runner, experiment, student).trials_failed == 1);
  CHECK_THAT(only_trial(store, experiment, student).error, Contains("diverged"));
  const auto baseline = index_of("resnet20", "dorefa", 2);
  CHECK(train_run(runner, experiment, baseline).trials_failed == 0);
}

TEST_CASE("with reuse, a trial another experiment finished under the same run hash is recorded",
          "[init][reuse]") {
  auto spec = tiny_experiment("first_table");
  spec["trials"] = 1;
  spec["training"]["epochs"] = 1;
  const auto first = parse(spec);
  spec["name"] = "second_table";
  spec["precisions"] = {"32W32A", "2W2A", "4W4A"};
  const auto second = parse(spec);
  REQUIRE(first.runs[0].record.hash == second.runs[0].record.hash);
  REQUIRE(first.runs[1].record.hash == second.runs[1].record.hash);

  SweepOnDisk sweep;
  auto& [folder, db, store, runner] = sweep;
  CHECK(runner.run(first, {}).trials_run == 2);

  SECTION("with --reuse the shared runs are recorded, the new one trained") {
    lowbit::SweepOptions options;
    options.reuse_other_experiments = true;
    const auto summary = runner.run(second, options);
    CHECK(summary.trials_reused == 2);
    CHECK(summary.trials_run == 1);
    for (size_t r = 0; r < 2; ++r) {
      const auto original = only_trial(store, first, r);
      const auto reused = only_trial(store, second, r);
      CHECK(reused.top1 == original.top1);
      CHECK(reused.final_loss == original.final_loss);
      CHECK(reused.wall_seconds == original.wall_seconds);
      CHECK(reused.started_from == original.started_from);
      REQUIRE(reused.epochs.size() == original.epochs.size());
      CHECK(reused.epochs[0].test_top1 == original.epochs[0].test_top1);
    }
    // Once recorded, they are the second experiment's own: a second pass skips them.
    CHECK(runner.run(second, options).trials_skipped == 3);
  }
  SECTION("without --reuse it trains them again") { CHECK(runner.run(second, {}).trials_run == 3); }
  SECTION("a trial recorded with the same plugin files in another folder is reused") {
    // A copy of the build (or an install) loads the same code from elsewhere.
    lowbit::testing::run_shell(
        fmt::format("sqlite3 '{}' \"UPDATE trials SET plugin_hashes_json = "
                    "replace(plugin_hashes_json, '/plugins/', '/plugins-copied/')\"",
                    db));
    REQUIRE_THAT(only_trial(store, first, 1).plugin_hashes.dump(), Contains("plugins-copied"));
    lowbit::SweepOptions options;
    options.reuse_other_experiments = true;
    CHECK(runner.run(second, options).trials_reused == 2);
  }
  SECTION("a trial recorded with other plugin files is not reused") {
    lowbit::testing::run_shell(
        fmt::format("sqlite3 '{}' \"UPDATE trials SET plugin_hashes_json = '{{}}'\"", db));
    lowbit::SweepOptions options;
    options.reuse_other_experiments = true;
    const auto summary = runner.run(second, options);
    CHECK(summary.trials_reused == 0);
    CHECK(summary.trials_run == 3);
  }
}

TEST_CASE("a finished 32W32A trial whose weights are gone is trained again before its users",
          "[init]") {
  // A campaign's database is committed without its weight files; a clone continues it.
  auto spec = tiny_experiment("committed_without_weights");
  spec["trials"] = 1;
  spec["training"]["epochs"] = 1;
  const auto experiment = parse(spec);
  REQUIRE(experiment.runs.size() == 2);
  SweepOnDisk sweep;
  auto& [folder, db, store, runner] = sweep;
  CHECK(train_run(runner, experiment, 0).trials_run == 1);
  const auto recorded = only_trial(store, experiment, 0);
  const auto weights = lowbit::trial_weights_path(store.path(), experiment.runs[0].record.hash, 0);
  REQUIRE(boost::filesystem::remove(weights));

  std::ostringstream progress;
  lowbit::SweepOptions options;
  options.progress = &progress;
  const auto summary = runner.run(experiment, options);
  CHECK(summary.trials_failed == 0);
  CHECK(boost::filesystem::exists(weights));
  CHECK(only_trial(store, experiment, 1).status == lowbit::TrialStatus::finished);
  const auto again = only_trial(store, experiment, 0);
  // Same machine, same threads: the same trial to the last bit, and the sweep says so.
  CHECK(again.top1 == recorded.top1);
  CHECK(again.final_loss == recorded.final_loss);
  CHECK_THAT(progress.str(), Contains("trained again, as " + weights + " was missing") &&
                                 Contains("the same to the last bit"));
}
