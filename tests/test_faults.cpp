// Faults around a sweep: a full disk, checkpoints of another database or cut short, killed
// parents of --jobs, two sweeps on one database, read-only commands on files they must not change.

#include <lowbit/experiment/experiment.h>
#include <lowbit/layers/quantized_layers.h>
#include <lowbit/results/layout.h>
#include <lowbit/results/store.h>
#include <lowbit/runner/claims.h>
#include <lowbit/runner/console_reporter.h>
#include <lowbit/training/checkpoint.h>
#include <lowbit/training/trainer.h>
#include <lowbit/training/weights.h>
#include <lowbit/util/atomic_file.h>

#include "test_support.h"

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

using Catch::Matchers::Contains;
using lowbit::testing::count_rows;
using lowbit::testing::lowbit_cli;
using lowbit::testing::query_integer;
using lowbit::testing::write_experiment;

namespace {

using lowbit::testing::file_bytes;
using lowbit::testing::shared_registry;

std::vector<std::string> folder_entries(const std::string& folder) {
  std::vector<std::string> names;
  for (const auto& entry : boost::filesystem::directory_iterator(folder)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

/// Starts `lowbit` with `arguments` in the background; its output goes to `log`.
pid_t start_lowbit(const std::string& arguments, const std::string& log) {
  const std::string command =
      fmt::format("exec '{}/bin/lowbit' {} >'{}' 2>&1", LOWBIT_BINARY_DIR, arguments, log);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return child;
}

int wait_exit_code(pid_t child) {
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// A process is gone once it no longer exists or is a zombie nobody has reaped yet.
bool process_gone(int64_t pid) {
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

/// The pids of the live processes that hold claims (dead holders' claims stay until taken over).
std::vector<int64_t> live_claim_pids(const std::string& db) {
  std::vector<int64_t> pids;
  sqlite3* handle = nullptr;
  if (sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(handle, 5000);
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(handle, "SELECT DISTINCT pid FROM claims", -1, &statement, nullptr) ==
        SQLITE_OK) {
      while (sqlite3_step(statement) == SQLITE_ROW) {
        const int64_t pid = sqlite3_column_int64(statement, 0);
        if (!process_gone(pid)) pids.push_back(pid);
      }
    }
    sqlite3_finalize(statement);
  }
  sqlite3_close(handle);
  return pids;
}

/// One DoReFa 2W2A run of one trial.
nlohmann::json one_trial_experiment() {
  auto spec = lowbit::testing::tiny_experiment();
  spec["precisions"] = {"2W2A"};
  spec["trials"] = 1;
  return spec;
}

/// A sweep slow enough to be caught in flight: 2 runs x `trials`, `epochs` epochs each.
nlohmann::json slow_experiment(int64_t trials, int64_t epochs) {
  auto spec = lowbit::testing::tiny_experiment();
  spec["trials"] = trials;
  spec["training"]["epochs"] = epochs;
  spec["training"]["max_steps_per_epoch"] = 3;
  return spec;
}

lowbit::TrialSpec checkpointed_trial(const lowbit::DataSplits& data, const std::string& checkpoint,
                                     const std::string& database_id) {
  const auto quantizer = lowbit::testing::default_quantizer("dorefa");
  lowbit::ModelSpec model{data.channels, data.num_classes, data.image_size};
  lowbit::TrialSpec spec;
  spec.seed = 4;
  spec.trial.label = "[trial]";
  spec.target = lowbit::Stage{"main", 2, 0.05, 2, 2};
  spec.checkpoint_path = checkpoint;
  spec.database_id = database_id;
  spec.build_network = [quantizer, model] {
    lowbit::QuantizedLayerFactory layers(quantizer, {2, 2, false});
    return shared_registry().model("resnet20")(model, layers);
  };
  return spec;
}

}  // namespace

TEST_CASE("a full disk is a clear error that leaves no partial file", "[faults]") {
  lowbit::testing::TemporaryFolder folder;
  const auto target = folder.file("weights/trial-0.pt");
  lowbit::create_folder(folder.file("weights"));
  // /dev/full answers every write with ENOSPC, as a full disk does.
  const auto temporary = lowbit::temporary_path(target);
  boost::filesystem::create_symlink("/dev/full", temporary);
  torch::nn::Linear layer(4, 2);
  CHECK_THROWS_WITH(lowbit::save_weights(*layer, target),
                    Contains("No space left on device while writing " + target));
  CHECK_FALSE(boost::filesystem::exists(target));
  CHECK_FALSE(boost::filesystem::exists(boost::filesystem::symlink_status(temporary)));
  CHECK_THROWS_AS(lowbit::write_text_atomically("/dev/full/x", "text"), lowbit::StorageError);
  lowbit::save_weights(*layer, target);  // space again: the same call succeeds
  CHECK(boost::filesystem::is_regular_file(target));
}

TEST_CASE("a sweep that cannot write its files stops, keeps its database consistent and resumes",
          "[faults][e2e]") {
  lowbit::testing::TemporaryFolder folder;
  const auto db = folder.file("results.db");
  const auto spec = one_trial_experiment();
  const auto file = write_experiment(folder, "full.json", spec);
  const auto experiment = lowbit::parse_experiment(spec, file, shared_registry());
  const auto checkpoint = lowbit::trial_checkpoint_path(db, experiment.runs[0].record.hash, 0);
  // The child's temporary file name holds its pid, so the write error comes from a file-size
  // limit instead of /dev/full: 400 kB take the database and its WAL but not the first
  // checkpoint (ResNet-20 and its momentum, about 2 MB). With SIGXFSZ ignored, write() fails.
  auto full = lowbit::testing::run_shell(fmt::format(
      "trap '' XFSZ; ulimit -f 400; exec '{}/bin/lowbit' run '{}' --db '{}' --threads 1",
      LOWBIT_BINARY_DIR, file, db));
  INFO(full.output);
  CHECK(full.exit_code == 1);
  CHECK_THAT(full.output, Contains("File too large while writing " + checkpoint));
  CHECK(folder_entries(boost::filesystem::path(checkpoint).parent_path().string()).empty());
  CHECK(count_rows(db, "SELECT COUNT(*) FROM trials") == 0);  // not recorded as a failed trial
  CHECK(count_rows(db, "SELECT COUNT(*) FROM claims") == 0);
  CHECK(count_rows(db, "PRAGMA integrity_check") == 0);  // "ok" reads as 0

  auto resumed = lowbit_cli(fmt::format("run '{}' --db '{}' --threads 1", file, db));
  INFO(resumed.output);
  CHECK(resumed.exit_code == 0);
  CHECK(count_rows(db, "SELECT COUNT(*) FROM trials WHERE status = 'finished'") == 1);
}

TEST_CASE("each database keeps its files in its own folder", "[faults]") {
  CHECK(lowbit::database_folder("/r/a.db") == "/r/a.db.d");
  CHECK(lowbit::trial_checkpoint_path("/r/a.db", "h", 1) == "/r/a.db.d/checkpoints/h/trial-1.ckpt");
  CHECK(lowbit::trial_weights_path("/r/b.db", "h", 0) == "/r/b.db.d/weights/h/trial-0.pt");
  CHECK(lowbit::model_spec_path("/r/b.db", "h") == "/r/b.db.d/weights/h/model_spec.json");
  CHECK(lowbit::trial_checkpoint_path("/r/a.db", "h", 0) !=
        lowbit::trial_checkpoint_path("/r/b.db", "h", 0));
}

TEST_CASE("a checkpoint of another database is refused and a truncated one restarts its trial",
          "[faults]") {
  const auto data = lowbit::testing::tiny_synthetic_data(64, 32);
  lowbit::TrainingOptions training;
  training.epochs = 2;
  training.batch_size = 32;
  std::ostringstream progress;
  lowbit::ConsoleReporter console(progress);
  lowbit::Trainer trainer(training, data, torch::kCPU, &console);
  lowbit::testing::TemporaryFolder folder;
  const auto checkpoint = folder.file("a.db.d/checkpoints/h/trial-0.ckpt");

  const auto uninterrupted = trainer.train(checkpointed_trial(data, "", "A"));
  // Two epochs leave the checkpoint written after the first.
  trainer.train(checkpointed_trial(data, checkpoint, "A"));
  REQUIRE(boost::filesystem::is_regular_file(checkpoint));

  CHECK_THROWS_WITH(trainer.train(checkpointed_trial(data, checkpoint, "B")),
                    Contains(checkpoint + ": the checkpoint belongs to another results database"));
  CHECK(boost::filesystem::is_regular_file(checkpoint));  // not ours to delete

  boost::filesystem::resize_file(checkpoint, boost::filesystem::file_size(checkpoint) / 2);
  const auto restarted = trainer.train(checkpointed_trial(data, checkpoint, "A"));
  CHECK_THAT(progress.str(), Contains("cannot read the checkpoint " + checkpoint));
  CHECK_THAT(progress.str(), Contains("the trial starts over"));
  REQUIRE(restarted.epochs.size() == 2);
  CHECK(restarted.epochs[1].train_loss == uninterrupted.epochs[1].train_loss);
  CHECK(restarted.top1 == uninterrupted.top1);
}

TEST_CASE("a checkpoint left behind by a recorded trial is cleaned on the next run",
          "[faults][e2e]") {
  lowbit::testing::TemporaryFolder folder;
  const auto db = folder.file("results.db");
  const auto spec = one_trial_experiment();
  const auto file = write_experiment(folder, "left.json", spec);
  REQUIRE(lowbit_cli(fmt::format("run '{}' --db '{}' --threads 1", file, db)).exit_code == 0);
  const auto experiment = lowbit::parse_experiment(spec, file, shared_registry());
  const auto checkpoint = lowbit::trial_checkpoint_path(db, experiment.runs[0].record.hash, 0);
  lowbit::write_text_atomically(checkpoint, "left between the commit and the removal");
  auto again = lowbit_cli(fmt::format("run '{}' --db '{}' --threads 1", file, db));
  CHECK_THAT(again.output, Contains("0 trials run, 1 already finished"));
  CHECK_FALSE(boost::filesystem::exists(checkpoint));
}

TEST_CASE("a claim is held by a live owner and taken over from a dead one", "[faults]") {
  lowbit::testing::TemporaryFolder folder;
  lowbit::ResultStore store(folder.file("claims.db"));
  const auto experiment =
      lowbit::parse_experiment(lowbit::testing::tiny_experiment(), "c.json", shared_registry());
  const int64_t experiment_id = store.ensure_experiment("tiny", "c.json", nlohmann::json::object());
  const int64_t run_id = store.ensure_run(experiment_id, experiment.runs[0].record);
  const lowbit::ClaimOwner first{"node1", 100, "token-1"};
  const lowbit::ClaimOwner second{"node2", 200, "token-2"};
  auto always = [](const lowbit::ClaimOwner&, double) { return true; };
  auto never = [](const lowbit::ClaimOwner&, double) { return false; };

  CHECK(store.claim_trial(run_id, 0, first, always).outcome ==
        lowbit::TrialClaim::Outcome::claimed);
  const auto held = store.claim_trial(run_id, 0, second, always);
  CHECK(held.outcome == lowbit::TrialClaim::Outcome::owned_elsewhere);
  CHECK(lowbit::describe(held.holder) == "pid 100 on node1");
  // The owner itself may claim again (a resumed run of the same process).
  CHECK(store.claim_trial(run_id, 0, first, always).outcome ==
        lowbit::TrialClaim::Outcome::claimed);
  const auto taken = store.claim_trial(run_id, 0, second, never);
  CHECK(taken.outcome == lowbit::TrialClaim::Outcome::claimed);
  CHECK(taken.taken_over);
  CHECK(taken.holder.token == "token-1");

  lowbit::TrialRecord trial;
  trial.trial_index = 0;
  trial.status = lowbit::TrialStatus::finished;
  store.record_trial(run_id, trial);
  CHECK(count_rows(store.path(), "SELECT COUNT(*) FROM claims") == 0);
  CHECK(store.claim_trial(run_id, 0, first, never).outcome ==
        lowbit::TrialClaim::Outcome::finished);
  CHECK_THROWS_AS(store.record_trial(run_id, trial), lowbit::TrialAlreadyFinished);

  // Liveness: a stale heartbeat is dead anywhere; on this host a vanished pid is dead at once.
  lowbit::ClaimKeeper keeper(store.path());
  const double now = lowbit::unix_seconds();
  CHECK(keeper.alive(lowbit::ClaimOwner{"elsewhere", 1, "t"}, now));
  CHECK_FALSE(keeper.alive(lowbit::ClaimOwner{"elsewhere", 1, "t"}, now - 1000));
  const pid_t exited = ::fork();
  if (exited == 0) ::_exit(0);
  ::waitpid(exited, nullptr, 0);
  CHECK_FALSE(keeper.alive(lowbit::ClaimOwner{keeper.owner().host, exited, "t"}, now));
  CHECK(keeper.alive(lowbit::ClaimOwner{keeper.owner().host, ::getpid(), "t"}, now));
}

TEST_CASE("killing the parent of --jobs stops its jobs, and a restart finishes the sweep once",
          "[faults][e2e][parallel]") {
  lowbit::testing::TemporaryFolder folder;
  const auto db = folder.file("results.db");
  const auto file = write_experiment(folder, "jobs.json", slow_experiment(4, 20));
  for (int signal : {SIGKILL, SIGTERM}) {
    INFO("signal " << signal);
    const pid_t parent =
        start_lowbit(fmt::format("run '{}' --db '{}' --jobs 2 --threads 1", file, db),
                     folder.file("parent.log"));
    // Wait until both jobs hold a claim, i.e. are training.
    std::vector<int64_t> jobs;
    for (int i = 0; i < 1200 && jobs.size() < 2; ++i) {
      ::usleep(50 * 1000);
      if (boost::filesystem::exists(db)) jobs = live_claim_pids(db);
    }
    REQUIRE(jobs.size() == 2);
    ::kill(parent, signal);
    CHECK(wait_exit_code(parent) != 0);
    bool all_gone = false;
    for (int i = 0; i < 200 && !all_gone; ++i) {
      all_gone = std::all_of(jobs.begin(), jobs.end(), process_gone);
      if (!all_gone) ::usleep(50 * 1000);
    }
    CHECK(all_gone);
  }
  auto restarted = lowbit_cli(fmt::format("run '{}' --db '{}' --threads 1", file, db));
  INFO(restarted.output);
  CHECK(restarted.exit_code == 0);
  CHECK_THAT(restarted.output, Contains("0 failed"));
  CHECK(restarted.output.find("already recorded") == std::string::npos);
  CHECK(count_rows(db, "SELECT COUNT(*) FROM trials WHERE status = 'finished'") == 8);
  CHECK(count_rows(db, "SELECT COUNT(*) FROM trials") == 8);
  CHECK(count_rows(db, "SELECT COUNT(*) FROM claims") == 0);
}

TEST_CASE("two sweeps on one database share its trials and train none twice",
          "[faults][e2e][parallel]") {
  lowbit::testing::TemporaryFolder folder;
  const auto db = folder.file("results.db");
  const auto file = write_experiment(folder, "shared.json", slow_experiment(2, 3));
  const pid_t first = start_lowbit(fmt::format("run '{}' --db '{}' --threads 1", file, db),
                                   folder.file("first.log"));
  const pid_t second = start_lowbit(fmt::format("run '{}' --db '{}' --threads 1", file, db),
                                    folder.file("second.log"));
  const int first_code = wait_exit_code(first);
  const int second_code = wait_exit_code(second);
  const auto logs = file_bytes(folder.file("first.log")) + file_bytes(folder.file("second.log"));
  INFO(logs);
  CHECK(first_code == 0);
  CHECK(second_code == 0);
  CHECK(logs.find("already recorded") == std::string::npos);
  CHECK(count_rows(db, "SELECT COUNT(*) FROM trials WHERE status = 'finished'") == 4);
  // Every trial trained once: 4 "finished:" lines over both sweeps.
  size_t finished_lines = 0;
  for (size_t at = logs.find("finished: top-1"); at != std::string::npos;
       at = logs.find("finished: top-1", at + 1)) {
    ++finished_lines;
  }
  CHECK(finished_lines == 4);
}

TEST_CASE("table, report and export change no byte of the database and refuse foreign files",
          "[faults][e2e]") {
  lowbit::testing::TemporaryFolder folder;
  const auto db = folder.file("results.db");
  auto spec = lowbit::testing::tiny_experiment();
  spec["trials"] = 1;
  const auto file = write_experiment(folder, "ro.json", spec);
  REQUIRE(lowbit_cli(fmt::format("run '{}' --db '{}' --threads 1", file, db)).exit_code == 0);
  const auto output = folder.file("out");
  lowbit::create_folder(output);
  const auto bytes = file_bytes(db);
  const auto entries = folder_entries(folder.path());
  // As a user who may read but not write the database and its folder.
  const std::string as_reader =
      ::geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
  if (::geteuid() != 0)
    boost::filesystem::permissions(folder.path(), boost::filesystem::perms(0555));
  boost::filesystem::permissions(output, boost::filesystem::perms(0777));
  for (const std::string& command :
       {fmt::format("table --db '{}'", db), fmt::format("table --db '{}' --format latex", db),
        fmt::format("report --db '{}' -o '{}/r.html'", db, output),
        fmt::format(
            "export --db '{}' --model resnet20 --method dorefa --precision 2W2A -o '{}/t.pt'", db,
            output)}) {
    INFO(command);
    auto result = lowbit::testing::run_shell(
        fmt::format("{}'{}/bin/lowbit' {}", as_reader, LOWBIT_BINARY_DIR, command));
    INFO(result.output);
    CHECK(result.exit_code == 0);
  }
  boost::filesystem::permissions(folder.path(), boost::filesystem::perms(0755));
  CHECK(file_bytes(db) == bytes);
  CHECK(folder_entries(folder.path()) == entries);

  // Another program's SQLite file: refused by readers and writers alike, and left as it was.
  const auto foreign = folder.file("foreign.db");
  {
    sqlite3* handle = nullptr;
    REQUIRE(sqlite3_open(foreign.c_str(), &handle) == SQLITE_OK);
    REQUIRE(sqlite3_exec(handle, "CREATE TABLE contacts (name TEXT)", nullptr, nullptr, nullptr) ==
            SQLITE_OK);
    sqlite3_close(handle);
  }
  const auto foreign_bytes = file_bytes(foreign);
  for (const std::string& command :
       {fmt::format("table --db '{}'", foreign),
        fmt::format("report --db '{}' -o '{}/f.html'", foreign, output),
        fmt::format("run '{}' --db '{}'", file, foreign)}) {
    INFO(command);
    auto result = lowbit_cli(command);
    CHECK(result.exit_code == 1);
    CHECK_THAT(result.output, Contains(foreign + " is not a lowbit results database"));
  }
  CHECK(file_bytes(foreign) == foreign_bytes);
}
