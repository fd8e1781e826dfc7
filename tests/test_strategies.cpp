// The strategy plugins inside the harness: a killed trial resumes from its per-epoch checkpoint
// and ends exactly as an uninterrupted one (with TS stages, SP draws and a KD teacher), tiny
// end-to-end sweeps of SP+KD and TS+PP+KD, and paper-style method labels.

#include <lowbit/data/synthetic.h>
#include <lowbit/experiment/experiment.h>
#include <lowbit/layers/quantized_layers.h>
#include <lowbit/results/layout.h>
#include <lowbit/results/store.h>
#include <lowbit/results/table.h>
#include <lowbit/runner/console_reporter.h>
#include <lowbit/runner/sweep.h>
#include <lowbit/training/checkpoint.h>
#include <lowbit/training/trainer.h>
#include <lowbit/training/weights.h>

#include "test_support.h"

#include <boost/filesystem.hpp>
#include <catch2/catch.hpp>

#include <stdexcept>

namespace {

using nlohmann::json;

using lowbit::testing::shared_components;

lowbit::DataSplits strategy_test_data() { return lowbit::testing::tiny_synthetic_data(96, 32); }

/// Throws at the start of a given epoch while armed: a run killed mid-trial.
class Killer : public lowbit::Strategy {
 public:
  int64_t kill_at_epoch = -1;
  void on_step_begin(const lowbit::TrainingState& state, const lowbit::Batch&) override {
    if (state.epoch == kill_at_epoch) throw std::runtime_error("killed");
  }
};

struct StrategyRun {
  std::vector<std::unique_ptr<lowbit::Strategy>> owned;
  Killer killer;
  lowbit::TrialSpec spec;
};

/// TS (1 + 2 epochs) + SP + KD on resnet20 at 2W2A; fresh strategy objects, as a new process has.
std::unique_ptr<StrategyRun> strategy_run(const lowbit::DataSplits& data) {
  auto run = std::make_unique<StrategyRun>();
  const std::vector<std::pair<std::string, json>> choices{
      {"two_stage", {{"stage1", {{"epochs", 1}}}}},
      {"stochastic", {{"zero_at_epoch", 2}}},
      {"kd", {{"teacher", "resnet20"}}}};
  run->spec.strategies.push_back(&run->killer);
  for (const auto& [name, options] : choices) {
    run->owned.push_back(
        shared_components().registry.strategy(name)(lowbit::JsonReader(options, "t")));
    run->spec.strategies.push_back(run->owned.back().get());
  }
  json none = json::object();
  std::shared_ptr<const lowbit::Quantizer> quantizer =
      shared_components().registry.quantizer("dorefa")(lowbit::JsonReader(none, "t"));
  lowbit::ModelSpec model{data.channels, data.num_classes, data.image_size};
  run->spec.seed = 9;
  run->spec.model = "resnet20";
  run->spec.target = lowbit::Stage{"main", 2, 0.05, 2, 2};  // TS: 1 extra epoch, then these 2
  run->spec.build_network = [quantizer, model] {
    lowbit::QuantizedLayerFactory layers(quantizer, {2, 2, false});
    return shared_components().registry.model("resnet20")(model, layers);
  };
  run->spec.build_full_precision = [model](const std::string& name, lowbit::NetworkStart) {
    lowbit::QuantizedLayerFactory layers(nullptr, lowbit::PrecisionPolicy{});
    return shared_components().registry.model(name)(model, layers);
  };
  return run;
}

lowbit::TrainingOptions tiny_training() {
  lowbit::TrainingOptions options;
  options.batch_size = 32;
  options.max_steps_per_epoch = 2;
  options.augment = lowbit::AugmentOptions{1, true};
  return options;
}

}  // namespace

TEST_CASE("a killed trial resumes from its last epoch and ends as an uninterrupted one",
          "[strategies][checkpoint]") {
  auto data = strategy_test_data();
  lowbit::Trainer trainer(tiny_training(), data, torch::kCPU, nullptr);
  auto reference_run = strategy_run(data);
  const auto reference = trainer.train(reference_run->spec);
  REQUIRE(reference.epochs.size() == 3);
  CHECK(reference.epochs[0].stage == "ts1");
  CHECK(reference.epochs[0].activation_bits == 32);
  CHECK(reference.epochs[2].stage == "ts2");
  CHECK(reference.extra.count("teacher_top1") == 1);
  CHECK(reference.epochs[0].extra.at("sp_delta") == Approx(0.5));

  // Killed at the start of epoch 2 (a stage boundary: ts1 done) or of epoch 3 (mid ts2).
  for (int64_t kill_at : {1, 2}) {
    DYNAMIC_SECTION("killed before epoch " << kill_at + 1) {
      lowbit::testing::TemporaryFolder folder;
      const auto path = folder.file("checkpoints/trial-0.ckpt");
      auto killed = strategy_run(data);
      killed->spec.checkpoint_path = path;
      killed->killer.kill_at_epoch = kill_at;
      CHECK_THROWS_WITH(trainer.train(killed->spec), "killed");
      REQUIRE(lowbit::checkpoint_exists(path));

      auto resumed_run = strategy_run(data);
      resumed_run->spec.checkpoint_path = path;
      std::ostringstream progress;
      lowbit::ConsoleReporter console(progress);
      lowbit::Trainer resuming(tiny_training(), data, torch::kCPU, &console);
      const auto resumed = resuming.train(resumed_run->spec);
      CHECK(progress.str().find("resumed after epoch " + std::to_string(kill_at)) !=
            std::string::npos);
      // Only the epochs after the checkpoint were trained again.
      CHECK(progress.str().find("epoch 1/3 [") == std::string::npos);
      CHECK(progress.str().find("epoch 3/3 [") != std::string::npos);
      REQUIRE(resumed.epochs.size() == reference.epochs.size());
      for (size_t e = 0; e < reference.epochs.size(); ++e) {
        INFO("epoch " << e + 1);
        CHECK(resumed.epochs[e].train_loss == reference.epochs[e].train_loss);
        CHECK(resumed.epochs[e].test_top1 == reference.epochs[e].test_top1);
        CHECK(resumed.epochs[e].extra == reference.epochs[e].extra);
      }
      CHECK(resumed.top1 == reference.top1);
      CHECK(resumed.final_loss == reference.final_loss);
      lowbit::remove_checkpoint(path);
      CHECK_FALSE(lowbit::checkpoint_exists(path));
    }
  }
}

TEST_CASE("tiny sweeps of SP+KD and TS+PP+KD record teacher accuracy and paper-style labels",
          "[strategies][end-to-end]") {
  auto spec = lowbit::testing::tiny_experiment("strategies");
  spec["precisions"] = {"2W2A"};
  spec["trials"] = 1;
  spec["training"]["epochs"] = 2;
  spec["strategies"] = json::parse(R"([
    [],
    [{"name": "stochastic", "options": {"fragment": "layer", "wa": true}}, "kd"],
    [{"name": "two_stage", "options": {"stage1": {"epochs": 1}}},
     {"name": "progressive", "options": {"sequence": [32, 4], "epochs": 1}},
     {"name": "kd", "options": {"loss": "posterior", "teacher": "resnet32"}}]
  ])");
  auto experiment = lowbit::parse_experiment(spec, "strategies.json", shared_components().registry);
  REQUIRE(experiment.runs.size() == 3);
  CHECK(experiment.runs[0].record.method == "dorefa");
  CHECK(experiment.runs[1].record.method == "dorefa+SP+KD");
  CHECK(experiment.runs[2].record.method == "dorefa+TS+PP+KD");

  lowbit::testing::TemporaryFolder folder;
  lowbit::ResultStore store(folder.file("results.db"));
  lowbit::SweepRunner runner(shared_components().registry, shared_components().plugins, store);
  auto summary = runner.run(experiment, {});
  CHECK(summary.trials_run == 3);
  CHECK(summary.trials_failed == 0);

  const auto sp_kd_id =
      store.ensure_run(store.ensure_experiment(experiment.name, experiment.file, experiment.spec),
                       experiment.runs[1].record);
  const auto sp_kd = store.trials(sp_kd_id);
  REQUIRE(sp_kd.size() == 1);
  CHECK(sp_kd[0].status == lowbit::TrialStatus::finished);
  CHECK(sp_kd[0].extra.count("teacher_top1") == 1);
  CHECK(sp_kd[0].extra.at("teacher_top1") >= 0.0);
  CHECK(sp_kd[0].epochs.size() == 2);

  const auto ts_pp_id =
      store.ensure_run(store.ensure_experiment(experiment.name, experiment.file, experiment.spec),
                       experiment.runs[2].record);
  const auto ts_pp = store.trials(ts_pp_id);
  REQUIRE(ts_pp.size() == 1);
  // TS then PP(32, 4): PP lowers the weights inside ts1 and the activations inside ts2.
  std::vector<std::string> stages;
  for (const auto& epoch : ts_pp[0].epochs) {
    stages.push_back(epoch.stage + " " +
                     lowbit::precision_label(epoch.weight_bits, epoch.activation_bits));
  }
  // PP's earlier precisions are extra stages of 1 epoch; each closing one keeps its TS stage's
  // epochs (ts2, the target: the run's 2).
  CHECK(stages == std::vector<std::string>{"ts1/pp32W32A 32W32A", "ts1/pp4W32A 4W32A",
                                           "ts1/pp2W32A 2W32A", "ts2/pp2W4A 2W4A",
                                           "ts2/pp2W2A 2W2A", "ts2/pp2W2A 2W2A"});
  CHECK(ts_pp[0].extra.count("teacher_top1") == 1);
  // Every recorded trial's checkpoint is gone.
  int64_t checkpoints = 0;
  const auto checkpoint_folder = lowbit::database_folder(store.path()) + "/checkpoints";
  REQUIRE(boost::filesystem::exists(lowbit::database_folder(store.path()) + "/weights"));
  if (boost::filesystem::exists(checkpoint_folder)) {
    for (boost::filesystem::recursive_directory_iterator it(checkpoint_folder), end; it != end;
         ++it) {
      checkpoints += boost::filesystem::is_regular_file(it->path());
    }
  }
  CHECK(checkpoints == 0);

  auto table = lowbit::render_table(store.summaries(), lowbit::TableFormat::markdown,
                                    lowbit::TableOptions{true});
  CHECK(table.find("Baseline") != std::string::npos);
  CHECK(table.find("+SP+KD") != std::string::npos);
  CHECK(table.find("+TS+PP+KD") != std::string::npos);
  CHECK(table.find("resnet20 dorefa") != std::string::npos);
}

TEST_CASE("an experiment may label a strategy's column; the label is not part of the run's hash",
          "[strategies][experiment]") {
  auto spec = lowbit::testing::tiny_experiment("labels");
  spec["precisions"] = {"2W2A"};
  spec["strategies"] = json::parse(R"json([
    [{"name": "stochastic", "options": {"fragment": "layer"}}],
    [{"name": "stochastic", "label": "SP(layer)", "options": {"fragment": "layer"}}]
  ])json");
  auto experiment = lowbit::parse_experiment(spec, "labels.json", shared_components().registry);
  REQUIRE(experiment.runs.size() == 2);
  CHECK(experiment.runs[0].record.method == "dorefa+SP");
  CHECK(experiment.runs[1].record.method == "dorefa+SP(layer)");
  CHECK(experiment.runs[0].record.hash == experiment.runs[1].record.hash);
  spec["strategies"] = json::parse(R"([[{"name": "stochastic", "lable": "x"}]])");
  CHECK_THROWS_WITH(lowbit::parse_experiment(spec, "labels.json", shared_components().registry),
                    Catch::Contains("lable"));
}

TEST_CASE(
    "KD starts a quantized student from a full-precision trial's weights and a teacher "
    "from a quantized run's file",
    "[strategies][kd]") {
  auto data = strategy_test_data();
  auto run = strategy_run(data);
  lowbit::testing::TemporaryFolder folder;
  // A full-precision network (no quantizer modules) and a quantized one (with them), saved as the
  // sweep saves finished trials.
  auto full_precision = run->spec.build_full_precision("resnet20", lowbit::NetworkStart::seed);
  auto quantized = run->spec.build_network();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : full_precision->parameters()) p.fill_(0.125);
    for (auto& p : quantized->parameters()) p.fill_(-0.5);
  }
  lowbit::save_weights(*full_precision, folder.file("fp.pt"));
  lowbit::save_weights(*quantized, folder.file("q.pt"));

  json options = {{"student_checkpoint", folder.file("fp.pt")},
                  {"teacher_checkpoint", folder.file("q.pt")}};
  auto kd = shared_components().registry.strategy("kd")(lowbit::JsonReader(options, "t"));
  auto student = run->spec.build_network();
  lowbit::TrainingState state;
  state.network = student.get();
  state.model = "resnet20";
  const lowbit::FunctionTrainingServices services(run->spec.build_full_precision, {});
  state.services = &services;
  kd->on_trial_begin(state);
  for (auto& p : student->parameters()) CHECK(torch::all(p == 0.125).item<bool>());

  // The teacher (full precision, no quantizer modules) took the quantized file's values; they come
  // back through the strategy's checkpoint state.
  torch::serialize::OutputArchive archive;
  kd->save_state(archive);
  std::stringstream stream;
  archive.save_to(stream);
  torch::serialize::InputArchive restored;
  restored.load_from(stream);
  torch::serialize::InputArchive teacher;
  restored.read("teacher", teacher);
  torch::serialize::InputArchive classifier;
  torch::Tensor weight;
  REQUIRE(teacher.try_read("fc", classifier));
  REQUIRE(classifier.try_read("weight", weight));
  CHECK(torch::all(weight == -0.5).item<bool>());

  json wrong = {{"student_checkpoint", folder.file("fp.pt")},
                {"teacher", "resnet32"},
                {"teacher_checkpoint", folder.file("fp.pt")}};
  auto mismatched = shared_components().registry.strategy("kd")(lowbit::JsonReader(wrong, "t"));
  CHECK_THROWS_WITH(mismatched->on_trial_begin(state), Catch::Contains("fp.pt"));
}
