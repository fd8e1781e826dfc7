// The reporter seam: the trainer and the sweep tell their reporters what happens, in the order it
// happens; the database records a trial before any other reporter hears that it ended; the console
// reporter prints the progress lines `lowbit run` has always printed, word for word.

#include <lowbit/experiment/experiment.h>
#include <lowbit/layers/quantized_layers.h>
#include <lowbit/results/store.h>
#include <lowbit/runner/console_reporter.h>
#include <lowbit/runner/reporter.h>
#include <lowbit/runner/sweep.h>
#include <lowbit/training/checkpoint.h>
#include <lowbit/training/trainer.h>

#include "test_support.h"

#include <boost/filesystem.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Catch::Matchers::Contains;
using Calls = std::vector<std::string>;

/// Writes down each call as a line naming the trial by run and trial index ("r1t0").
class RecordingReporter : public lowbit::Reporter {
 public:
  Calls calls;
  /// Asked when a trial ends: whether the database holds it already.
  std::function<bool(const lowbit::TrialContext&)> stored;

  void on_checkpoint_unreadable(const lowbit::TrialContext& trial, const std::string&,
                                const std::string&) override {
    calls.push_back("unreadable " + id(trial));
  }
  void on_trial_resumed(const lowbit::TrialContext& trial, int64_t epochs_done,
                        int64_t total_epochs, const std::string&) override {
    calls.push_back(fmt::format("resumed {}/{} {}", epochs_done, total_epochs, id(trial)));
  }
  void on_epoch(const lowbit::TrialContext& trial, const lowbit::EpochRecord& epoch,
                const lowbit::EpochProgress& progress) override {
    calls.push_back(fmt::format("epoch {}/{} {}", epoch.epoch, progress.total_epochs, id(trial)));
  }
  void on_sweep_begin(const lowbit::SweepContext& sweep) override {
    calls.push_back(fmt::format("begin {} {}x{}", sweep.experiment, sweep.runs, sweep.trials));
  }
  void on_trial_skipped(const lowbit::TrialContext& trial,
                        const lowbit::TrialClaim& claim) override {
    const bool finished = claim.outcome == lowbit::TrialClaim::Outcome::finished;
    calls.push_back(fmt::format("skipped {} {}", finished ? "finished" : "elsewhere", id(trial)));
  }
  void on_trial_taken_over(const lowbit::TrialContext& trial, const lowbit::ClaimOwner&) override {
    calls.push_back("taken over " + id(trial));
  }
  void on_trial_needed_first(const lowbit::TrialContext& trial) override {
    calls.push_back("needed first " + id(trial));
  }
  void on_trial_waiting(const lowbit::TrialContext& trial, const lowbit::ClaimOwner&) override {
    calls.push_back("waiting " + id(trial));
  }
  void on_trial_failed(const lowbit::TrialContext& trial, const std::string&) override {
    calls.push_back("failed " + id(trial));
  }
  void on_trial_end(const lowbit::TrialContext& trial, const lowbit::TrialRecord& record) override {
    calls.push_back(fmt::format("end {} {}{}", lowbit::to_string(record.status), id(trial),
                                stored && stored(trial) ? " stored" : ""));
  }
  void on_trial_not_recorded(const lowbit::TrialContext& trial, const std::string&) override {
    calls.push_back("not recorded " + id(trial));
  }
  void on_sweep_end(const lowbit::SweepContext&, const lowbit::SweepSummary& summary) override {
    calls.push_back(
        fmt::format("end sweep: {} run, {} skipped", summary.trials_run, summary.trials_skipped));
  }

 private:
  static std::string id(const lowbit::TrialContext& trial) {
    return fmt::format("r{}t{}", trial.run_index, trial.trial_index);
  }
};

using lowbit::testing::shared_components;

/// A 2W2A DoReFa ResNet-20 trial of three epochs that keeps its checkpoint at `checkpoint`.
lowbit::TrialSpec checkpointed_trial(const lowbit::DataSplits& data,
                                     const std::string& checkpoint) {
  nlohmann::json no_options = nlohmann::json::object();
  std::shared_ptr<const lowbit::Quantizer> quantizer =
      shared_components().registry.quantizer("dorefa")(lowbit::JsonReader(no_options, "test"));
  const lowbit::ModelSpec model{data.channels, data.num_classes, data.image_size};
  lowbit::TrialSpec spec;
  spec.seed = 3;
  spec.trial = {"[trial]", 0, 0};
  spec.target = lowbit::Stage{"main", 3, 0.05, 2, 2};
  spec.checkpoint_path = checkpoint;
  spec.database_id = "A";
  spec.build_network = [quantizer, model] {
    return lowbit::build_network(shared_components().registry.model("resnet20"), model, quantizer,
                                 lowbit::PrecisionPolicy{2, 2, false});
  };
  return spec;
}

/// Whether `store` holds trial `trial` of the experiment's run as finished.
bool stored_finished(lowbit::ResultStore& store, const lowbit::Experiment& experiment,
                     const lowbit::TrialContext& trial) {
  const auto& hash = experiment.runs.at(trial.run_index).record.hash;
  for (const auto& run : store.runs(experiment.name)) {
    if (run.record.hash == hash) return store.trial_finished(run.id, trial.trial_index);
  }
  return false;
}

}  // namespace

TEST_CASE("the trainer reports each epoch, a resume and an unreadable checkpoint, in order",
          "[reporter]") {
  const auto data = lowbit::testing::tiny_synthetic_data(64, 32);
  lowbit::TrainingOptions training;
  training.batch_size = 32;
  training.max_steps_per_epoch = 1;
  RecordingReporter reporter;
  lowbit::Trainer trainer(training, data, torch::kCPU, &reporter);
  lowbit::testing::TemporaryFolder folder;
  const auto checkpoint = folder.file("a.db.d/checkpoints/h/trial-0.ckpt");
  const auto spec = checkpointed_trial(data, checkpoint);

  trainer.train(spec);
  CHECK(reporter.calls == Calls{"epoch 1/3 r0t0", "epoch 2/3 r0t0", "epoch 3/3 r0t0"});

  // The checkpoint written after epoch 2 is still there: the caller removes it once recorded.
  REQUIRE(lowbit::checkpoint_exists(checkpoint));
  reporter.calls.clear();
  trainer.train(spec);
  CHECK(reporter.calls == Calls{"resumed 2/3 r0t0", "epoch 3/3 r0t0"});

  boost::filesystem::resize_file(checkpoint, boost::filesystem::file_size(checkpoint) / 2);
  reporter.calls.clear();
  trainer.train(spec);
  CHECK(reporter.calls ==
        Calls{"unreadable r0t0", "epoch 1/3 r0t0", "epoch 2/3 r0t0", "epoch 3/3 r0t0"});
}

TEST_CASE("a sweep tells its reporters everything in order, the database first",
          "[reporter][e2e]") {
  auto spec = lowbit::testing::tiny_experiment("reported");
  spec["trials"] = 1;
  const auto experiment =
      lowbit::parse_experiment(spec, "reported.json", shared_components().registry);
  REQUIRE(experiment.runs.size() == 2);
  lowbit::testing::TemporaryFolder folder;
  lowbit::ResultStore store(folder.file("results.db"));
  lowbit::SweepRunner runner(shared_components().registry, shared_components().plugins, store);
  RecordingReporter reporter;
  reporter.stored = [&](const lowbit::TrialContext& trial) {
    return stored_finished(store, experiment, trial);
  };
  std::ostringstream progress;
  lowbit::SweepOptions options;
  options.progress = &progress;
  options.reporters = {&reporter};

  runner.run(experiment, options);
  // The 32W32A run comes first: the 2W2A run starts from it.
  CHECK(reporter.calls == Calls{"begin reported 2x1", "epoch 1/2 r0t0", "epoch 2/2 r0t0",
                                "end finished r0t0 stored", "epoch 1/2 r1t0", "epoch 2/2 r1t0",
                                "end finished r1t0 stored", "end sweep: 2 run, 0 skipped"});
  CHECK_THAT(progress.str(), Contains("reported: 2 runs x 1 trials on cpu ("));
  CHECK_THAT(progress.str(), Contains("trial 1/1] epoch 2/2 [main 32W32A] loss "));
  CHECK_THAT(progress.str(),
             Contains("[run 2/2 resnet20 ") && Contains("trial 1/1] finished: top-1 "));

  reporter.calls.clear();
  runner.run(experiment, options);
  CHECK(reporter.calls == Calls{"begin reported 2x1", "skipped finished r0t0",
                                "skipped finished r1t0", "end sweep: 0 run, 2 skipped"});
}

TEST_CASE("the console reporter prints the progress lines of lowbit run", "[reporter]") {
  std::ostringstream out;
  lowbit::ConsoleReporter console(out);
  const std::string t = "[run 1/2 resnet20 dorefa 2W2A trial 1/1]";
  const lowbit::TrialContext trial{t, 0, 0};
  const lowbit::ClaimOwner holder{"node7", 4242, "token"};

  console.on_sweep_begin({"tiny", 2, 1, torch::kCPU, 2, "synthetic", 96, 48});
  lowbit::EpochRecord epoch;
  epoch.epoch = 2;
  epoch.stage = "main";
  epoch.weight_bits = 2;
  epoch.activation_bits = 2;
  epoch.learning_rate = 0.05;
  epoch.train_loss = 1.234567;
  epoch.train_top1 = 50;
  epoch.test_top1 = 41.25;
  epoch.test_top5 = 90.5;
  epoch.images_per_second = 1234.4;
  epoch.extra = {{"teacher_top1", 91.23}};
  console.on_epoch(trial, epoch, {3, 65.2});
  console.on_trial_resumed(trial, 1, 3, "/r/a.db.d/c.ckpt");
  console.on_checkpoint_unreadable(trial, "/r/a.db.d/c.ckpt", "truncated");
  lowbit::TrialClaim finished;
  finished.outcome = lowbit::TrialClaim::Outcome::finished;
  console.on_trial_skipped(trial, finished);
  lowbit::TrialClaim elsewhere;
  elsewhere.outcome = lowbit::TrialClaim::Outcome::owned_elsewhere;
  elsewhere.holder = holder;
  console.on_trial_skipped(trial, elsewhere);
  console.on_trial_taken_over(trial, holder);
  console.on_trial_needed_first(trial);
  console.on_trial_waiting(trial, holder);
  console.on_trial_failed(trial, "training loss diverged (nan) in epoch 1");
  lowbit::TrialRecord failed;
  failed.status = lowbit::TrialStatus::failed;
  console.on_trial_end(trial, failed);  // said by on_trial_failed already
  lowbit::TrialRecord record;
  record.top1 = 41.25;
  record.top5 = 90.5;
  record.wall_seconds = 12.34;
  record.images_per_second = 987.6;
  console.on_trial_end(trial, record);
  console.on_trial_not_recorded(trial, "already recorded as finished");
  console.on_sweep_end({}, {});

  CHECK(out.str() ==
        "tiny: 2 runs x 1 trials on cpu (2 threads), data synthetic (96 train / 48 test)\n" + t +
            " epoch 2/3 [main 2W2A] loss 1.2346 train 50.00% test 41.25% top5 90.50% lr 0.05 "
            "1234 img/s ETA 1m05s teacher_top1 91.23\n" +
            t + " resumed after epoch 1/3 from /r/a.db.d/c.ckpt\n" + t +
            " cannot read the checkpoint /r/a.db.d/c.ckpt (truncated); the trial starts over\n" +
            t + " already finished, skipped\n" + t +
            " being trained by pid 4242 on node7, skipped\n" + t +
            " taking over from pid 4242 on node7, which stopped\n" + t +
            " is what the next trial starts from; training it first\n" + t +
            " waiting for pid 4242 on node7, which trains it\n" + t +
            " FAILED: training loss diverged (nan) in epoch 1\n" + t +
            " finished: top-1 41.25% top-5 90.50% in 12.3s (988 img/s)\n" + t +
            " not recorded: already recorded as finished\n");
}

TEST_CASE("a reporter list passes each call to every reporter in turn", "[reporter]") {
  RecordingReporter first;
  RecordingReporter second;
  lowbit::ReporterList list({&first, &second});
  second.stored = [&first](const lowbit::TrialContext&) { return first.calls.size() == 2; };
  const lowbit::TrialContext trial{"[t]", 1, 2};
  list.on_trial_needed_first(trial);
  list.on_trial_end(trial, lowbit::TrialRecord{});
  CHECK(first.calls == Calls{"needed first r1t2", "end finished r1t2"});
  // The second heard of the end after the first had.
  CHECK(second.calls == Calls{"needed first r1t2", "end finished r1t2 stored"});
}
