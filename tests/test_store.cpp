#include <lowbit/results/merge.h>
#include <lowbit/results/store.h>

#include "test_support.h"

#include <catch2/catch.hpp>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace {

namespace fs = std::filesystem;
using lowbit::EpochRecord;
using lowbit::ResultStore;
using lowbit::RunRecord;
using lowbit::TrialRecord;

/// The database sits one level down in a fresh folder, so the store has to create its parent.
struct TempDb {
  lowbit::testing::TemporaryFolder folder;
  std::string path = folder.file("nested/results.db");
};

/// A raw connection for looking behind the store's back.
struct RawDb {
  sqlite3* db = nullptr;
  explicit RawDb(const std::string& path) { REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK); }
  ~RawDb() { sqlite3_close(db); }

  int64_t integer(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    const int64_t value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
  }
  std::string text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    std::string value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    return value;
  }
  void exec(const std::string& sql) {
    REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  }
};

RunRecord make_run(const std::string& hash, const std::string& method = "dorefa", int bits = 2) {
  RunRecord run;
  run.hash = hash;
  run.model = "resnet20";
  run.quantizer = "dorefa";
  run.weight_bits = bits;
  run.activation_bits = bits;
  run.strategies = {"sp", "kd"};
  run.method = method;
  run.config = {{"lr", 0.1}, {"epochs", 2}};
  return run;
}

EpochRecord make_epoch(int64_t number, double test_top1) {
  EpochRecord epoch;
  epoch.epoch = number;
  epoch.stage = "full";
  epoch.weight_bits = 2;
  epoch.activation_bits = 4;
  epoch.learning_rate = 0.01;
  epoch.train_loss = 1.5;
  epoch.train_top1 = 55.5;
  epoch.test_top1 = test_top1;
  epoch.test_top5 = 90.25;
  epoch.images_per_second = 1234.5;
  epoch.seconds = 12.75;
  epoch.extra = {{"teacher_top1", 71.5}};
  return epoch;
}

TrialRecord make_trial(int64_t index, double top1, double top5 = 90.0) {
  TrialRecord trial;
  trial.trial_index = index;
  trial.seed = 42 + static_cast<uint64_t>(index);
  trial.top1 = top1;
  trial.top5 = top5;
  trial.final_loss = 0.75;
  trial.wall_seconds = 100.5;
  trial.images_per_second = 1000.0;
  trial.device = "cuda:0";
  trial.torch_version = "2.1.0";
  trial.cuda_version = "12.1";
  trial.plugin_hashes = {{"libdorefa.so", "abc123"}};
  trial.extra = {{"teacher_top1", 72.0}};
  trial.epochs = {make_epoch(1, 60.0), make_epoch(2, top1)};
  return trial;
}

TrialRecord make_failed(int64_t index, const std::string& error) {
  TrialRecord trial = make_trial(index, 0.0, 0.0);
  trial.status = lowbit::TrialStatus::failed;
  trial.error = error;
  trial.epochs = {make_epoch(1, 10.0)};
  return trial;
}

}  // namespace

TEST_CASE("store creates its folder, the schema and WAL mode", "[store]") {
  TempDb temp;
  { ResultStore store(temp.path); }
  REQUIRE(fs::exists(temp.path));
  RawDb raw(temp.path);
  CHECK(raw.integer("PRAGMA user_version") == 4);
  CHECK(raw.text("PRAGMA journal_mode") == "wal");
  for (const char* table :
       {"experiments", "runs", "trials", "epochs", "run_stats", "meta", "claims"}) {
    INFO(table);
    CHECK(raw.integer(std::string("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                  "name = '") +
                      table + "'") == 1);
  }
}

TEST_CASE("reopening an existing database keeps its data", "[store]") {
  TempDb temp;
  int64_t experiment = 0;
  {
    ResultStore store(temp.path);
    experiment = store.ensure_experiment("table1", "experiments/table1.json", {{"a", 1}});
  }
  ResultStore store(temp.path);
  CHECK(store.experiment_names() == std::vector<std::string>{"table1"});
  CHECK(store.ensure_experiment("table1", "experiments/table1.json", {{"a", 1}}) == experiment);
}

TEST_CASE("ensure_experiment and ensure_run are idempotent", "[store]") {
  TempDb temp;
  ResultStore store(temp.path);
  const int64_t experiment = store.ensure_experiment("table1", "a.json", {{"v", 1}});
  CHECK(store.ensure_experiment("table1", "a.json", {{"v", 1}}) == experiment);
  // The latest spec and file are kept under the same id.
  CHECK(store.ensure_experiment("table1", "b.json", {{"v", 2}}) == experiment);
  CHECK(store.ensure_experiment("table2", "c.json", {}) != experiment);

  const int64_t run = store.ensure_run(experiment, make_run("h1"));
  CHECK(store.ensure_run(experiment, make_run("h1")) == run);
  CHECK(store.ensure_run(experiment, make_run("h2")) != run);

  RawDb raw(temp.path);
  CHECK(raw.integer("SELECT count(*) FROM experiments") == 2);
  CHECK(raw.integer("SELECT count(*) FROM runs") == 2);
  CHECK(raw.text("SELECT file FROM experiments WHERE name = 'table1'") == "b.json");
  CHECK(
      nlohmann::json::parse(raw.text("SELECT spec_json FROM experiments WHERE name = 'table1'")) ==
      nlohmann::json{{"v", 2}});
  CHECK(raw.text("SELECT strategies FROM runs WHERE hash = 'h1'") == R"(["sp","kd"])");
}

TEST_CASE("ensure_run refuses an unknown experiment", "[store]") {
  TempDb temp;
  ResultStore store(temp.path);
  CHECK_THROWS_AS(store.ensure_run(12345, make_run("h1")), std::runtime_error);
}

TEST_CASE("a trial round-trips with its epochs and JSON fields", "[store]") {
  TempDb temp;
  ResultStore store(temp.path);
  const int64_t run = store.ensure_run(store.ensure_experiment("e", "e.json", {}), make_run("h"));
  CHECK_FALSE(store.trial_finished(run, 0));
  TrialRecord written = make_trial(0, 70.5);
  written.seed = 0xFFFFFFFFFFFFFFF0ull;  // above INT64_MAX: must survive the signed column
  store.record_trial(run, written);
  CHECK(store.trial_finished(run, 0));
  CHECK_FALSE(store.trial_finished(run, 1));

  const std::vector<TrialRecord> trials = store.trials(run);
  REQUIRE(trials.size() == 1);
  const TrialRecord& read = trials[0];
  CHECK(read.trial_index == 0);
  CHECK(read.seed == 0xFFFFFFFFFFFFFFF0ull);
  CHECK(read.status == lowbit::TrialStatus::finished);
  CHECK(read.error.empty());
  CHECK(read.top1 == 70.5);
  CHECK(read.top5 == 90.0);
  CHECK(read.final_loss == 0.75);
  CHECK(read.wall_seconds == 100.5);
  CHECK(read.images_per_second == 1000.0);
  CHECK(read.device == "cuda:0");
  CHECK(read.torch_version == "2.1.0");
  CHECK(read.cuda_version == "12.1");
  CHECK(read.plugin_hashes == nlohmann::json{{"libdorefa.so", "abc123"}});
  CHECK(read.extra == std::map<std::string, double>{{"teacher_top1", 72.0}});
  REQUIRE(read.epochs.size() == 2);
  const EpochRecord& epoch = read.epochs[1];
  CHECK(epoch.epoch == 2);
  CHECK(epoch.stage == "full");
  CHECK(epoch.weight_bits == 2);
  CHECK(epoch.activation_bits == 4);
  CHECK(epoch.learning_rate == 0.01);
  CHECK(epoch.train_loss == 1.5);
  CHECK(epoch.train_top1 == 55.5);
  CHECK(epoch.test_top1 == 70.5);
  CHECK(epoch.test_top5 == 90.25);
  CHECK(epoch.images_per_second == 1234.5);
  CHECK(epoch.seconds == 12.75);
  CHECK(epoch.extra == std::map<std::string, double>{{"teacher_top1", 71.5}});
  CHECK(read.epochs[0].epoch == 1);
}

TEST_CASE("a failed trial is replaced by a finished one", "[store]") {
  TempDb temp;
  ResultStore store(temp.path);
  const int64_t run = store.ensure_run(store.ensure_experiment("e", "e.json", {}), make_run("h"));
  store.record_trial(run, make_failed(0, "CUDA out of memory"));
  CHECK_FALSE(store.trial_finished(run, 0));
  CHECK(store.summaries().empty());  // no finished trial yet
  REQUIRE(store.trials(run).size() == 1);
  CHECK(store.trials(run)[0].error == "CUDA out of memory");

  store.record_trial(run, make_trial(0, 70.0));
  CHECK(store.trial_finished(run, 0));
  const auto trials = store.trials(run);
  REQUIRE(trials.size() == 1);
  CHECK(trials[0].status == lowbit::TrialStatus::finished);
  CHECK(trials[0].error.empty());
  CHECK(trials[0].epochs.size() == 2);

  RawDb raw(temp.path);
  CHECK(raw.integer("SELECT count(*) FROM trials") == 1);
  // The failed attempt's epoch went with it.
  CHECK(raw.integer("SELECT count(*) FROM epochs") == 2);
}

TEST_CASE("a finished trial is never written twice", "[store]") {
  TempDb temp;
  ResultStore store(temp.path);
  const int64_t run = store.ensure_run(store.ensure_experiment("e", "e.json", {}), make_run("h"));
  store.record_trial(run, make_trial(0, 70.0));
  CHECK_THROWS_AS(store.record_trial(run, make_trial(0, 99.0)), std::logic_error);
  CHECK_THROWS_AS(store.record_trial(run, make_failed(0, "late failure")), std::logic_error);

  const auto trials = store.trials(run);
  REQUIRE(trials.size() == 1);
  CHECK(trials[0].top1 == 70.0);
  RawDb raw(temp.path);
  CHECK(raw.integer("SELECT count(*) FROM trials") == 1);
  CHECK(raw.integer("SELECT count(*) FROM epochs") == 2);
}

TEST_CASE("a stored trial status other than finished or failed is refused when read", "[store]") {
  TempDb temp;
  ResultStore store(temp.path);
  const int64_t run = store.ensure_run(store.ensure_experiment("e", "e.json", {}), make_run("h"));
  store.record_trial(run, make_trial(0, 70.0));
  {
    // The schema's CHECK keeps other statuses out; only a damaged or foreign file has one.
    RawDb raw(temp.path);
    raw.exec("PRAGMA ignore_check_constraints = ON; UPDATE trials SET status = 'done'");
  }
  CHECK_THROWS_WITH(store.trials(run), Catch::Contains(temp.path) && Catch::Contains("\"done\"") &&
                                           Catch::Contains("allowed: \"finished\", \"failed\""));
}

TEST_CASE("trial statuses keep their database names both ways", "[store]") {
  using lowbit::TrialStatus;
  CHECK(lowbit::to_string(TrialStatus::finished) == "finished");
  CHECK(lowbit::to_string(TrialStatus::failed) == "failed");
  for (const auto& [name, status] : lowbit::trial_statuses()) {
    CHECK(lowbit::parse_trial_status(name) == status);
    CHECK(lowbit::to_string(status) == name);
  }
  CHECK_THROWS_WITH(lowbit::parse_trial_status("running"),
                    Catch::Contains("\"running\"") && Catch::Contains("finished, failed"));
  // What the store writes is what the schema allows and what it reads back.
  TempDb temp;
  ResultStore store(temp.path);
  const int64_t run = store.ensure_run(store.ensure_experiment("e", "e.json", {}), make_run("h"));
  store.record_trial(run, make_trial(0, 70.0));
  store.record_trial(run, make_failed(1, "diverged"));
  RawDb raw(temp.path);
  CHECK(raw.text("SELECT status FROM trials WHERE trial_index = 0") == "finished");
  CHECK(raw.text("SELECT status FROM trials WHERE trial_index = 1") == "failed");
  const auto trials = store.trials(run);
  REQUIRE(trials.size() == 2);
  CHECK(trials[0].status == TrialStatus::finished);
  CHECK(trials[1].status == TrialStatus::failed);
}

TEST_CASE("a failure inside record_trial leaves no partial trial", "[store]") {
  TempDb temp;
  ResultStore store(temp.path);
  const int64_t run = store.ensure_run(store.ensure_experiment("e", "e.json", {}), make_run("h"));
  TrialRecord broken = make_trial(0, 70.0);
  broken.epochs = {make_epoch(1, 60.0), make_epoch(1, 61.0)};  // duplicate epoch number
  CHECK_THROWS_WITH(store.record_trial(run, broken),
                    Catch::Contains(temp.path) && Catch::Contains("UNIQUE"));

  CHECK(store.trials(run).empty());
  CHECK_FALSE(store.trial_finished(run, 0));
  CHECK(store.summaries().empty());
  RawDb raw(temp.path);
  CHECK(raw.integer("SELECT count(*) FROM trials") == 0);
  CHECK(raw.integer("SELECT count(*) FROM epochs") == 0);
  CHECK(raw.integer("SELECT count(*) FROM run_stats") == 0);

  // The connection is usable again: the transaction was rolled back, not left open.
  store.record_trial(run, make_trial(0, 70.0));
  CHECK(store.trial_finished(run, 0));
}

TEST_CASE("run_stats hold mean and sample std over finished trials", "[store]") {
  TempDb temp;
  ResultStore store(temp.path);
  const int64_t experiment = store.ensure_experiment("e", "e.json", {});
  const int64_t run = store.ensure_run(experiment, make_run("h"));

  store.record_trial(run, make_trial(0, 70.0, 89.0));
  auto summaries = store.summaries();
  REQUIRE(summaries.size() == 1);
  CHECK(summaries[0].trials == 1);
  CHECK(summaries[0].top1_mean == 70.0);
  CHECK(summaries[0].top1_std == 0.0);  // a single trial has no spread

  store.record_trial(run, make_trial(1, 72.0, 91.0));
  store.record_trial(run, make_failed(2, "diverged"));  // failures do not count
  summaries = store.summaries();
  REQUIRE(summaries.size() == 1);
  const lowbit::RunSummary& s = summaries[0];
  CHECK(s.experiment == "e");
  CHECK(s.model == "resnet20");
  CHECK(s.method == "dorefa");
  CHECK(s.weight_bits == 2);
  CHECK(s.activation_bits == 2);
  CHECK(s.trials == 2);
  CHECK(s.top1_mean == Approx(71.0).epsilon(1e-12));
  CHECK(s.top1_std == Approx(1.41421356).epsilon(1e-8));
  CHECK(s.top5_mean == Approx(90.0).epsilon(1e-12));
  CHECK(s.top5_std == Approx(1.41421356).epsilon(1e-8));
  CHECK(s.images_per_second == Approx(1000.0));
}

TEST_CASE("summaries filter by experiment and come in table order", "[store]") {
  TempDb temp;
  ResultStore store(temp.path);
  const int64_t a = store.ensure_experiment("a", "a.json", {});
  const int64_t b = store.ensure_experiment("b", "b.json", {});
  store.record_trial(store.ensure_run(b, make_run("b1")), make_trial(0, 50.0));
  store.record_trial(store.ensure_run(a, make_run("a2", "dorefa", 2)), make_trial(0, 60.0));
  store.record_trial(store.ensure_run(a, make_run("a4", "dorefa", 4)), make_trial(0, 65.0));
  store.record_trial(store.ensure_run(a, make_run("a2sp", "dorefa+sp", 2)), make_trial(0, 62.0));
  store.ensure_run(a, make_run("never-run"));  // no trial: not summarised

  const auto only_a = store.summaries("a");
  REQUIRE(only_a.size() == 3);
  CHECK(only_a[0].method == "dorefa");
  CHECK(only_a[0].weight_bits == 4);
  CHECK(only_a[1].method == "dorefa");
  CHECK(only_a[1].weight_bits == 2);
  CHECK(only_a[2].method == "dorefa+sp");
  for (const auto& s : only_a) CHECK(s.experiment == "a");

  const auto all = store.summaries();
  REQUIRE(all.size() == 4);
  CHECK(all[3].experiment == "b");
  CHECK(store.summaries("missing").empty());
  CHECK(store.experiment_names() == std::vector<std::string>{"a", "b"});
}

TEST_CASE("two stores on one file see each other's writes", "[store]") {
  TempDb temp;
  ResultStore first(temp.path);
  ResultStore second(temp.path);
  const int64_t run = first.ensure_run(first.ensure_experiment("e", "e.json", {}), make_run("h"));
  first.record_trial(run, make_trial(0, 70.0));
  CHECK(second.trial_finished(run, 0));
  CHECK(second.ensure_run(second.ensure_experiment("e", "e.json", {}), make_run("h")) == run);
  second.record_trial(run, make_trial(1, 72.0));
  CHECK(first.trials(run).size() == 2);
  CHECK(first.summaries()[0].trials == 2);
}

TEST_CASE("a database from a newer schema is refused, naming the file", "[store]") {
  TempDb temp;
  { ResultStore store(temp.path); }
  {
    RawDb raw(temp.path);
    raw.exec("PRAGMA user_version = 99");
  }
  CHECK_THROWS_WITH(ResultStore(temp.path), Catch::Contains(temp.path) &&
                                                Catch::Contains("version 99") &&
                                                Catch::Contains("version 4"));
  CHECK_THROWS_WITH(ResultStore(temp.path, lowbit::StoreAccess::read_only),
                    Catch::Contains("version 99"));
}

TEST_CASE("a version-1 database is read as it is and migrated only by a writer", "[store]") {
  TempDb temp;
  int64_t run = 0;
  {
    ResultStore store(temp.path);
    run = store.ensure_run(store.ensure_experiment("e", "e.json", {}), make_run("h"));
    store.record_trial(run, make_trial(0, 70.0));
  }
  {
    RawDb raw(temp.path);
    raw.exec("DROP TABLE claims");
    raw.exec("DROP TABLE meta");
    for (const char* column : {"started_from", "epochs_trained", "images_seen"}) {
      raw.exec(std::string("ALTER TABLE trials DROP COLUMN ") + column);
    }
    raw.exec("PRAGMA user_version = 1");
  }
  {
    ResultStore reader(temp.path, lowbit::StoreAccess::read_only);
    CHECK(reader.database_id().empty());
    CHECK(reader.trials(run).size() == 1);
    CHECK(reader.trials(run)[0].epochs_trained == 0);  // not recorded before version 3
    CHECK(reader.summaries().at(0).images_seen == 0);
  }
  CHECK(RawDb(temp.path).integer("PRAGMA user_version") == 1);
  ResultStore writer(temp.path);
  CHECK(RawDb(temp.path).integer("PRAGMA user_version") == 4);
  CHECK(writer.trials(run).size() == 1);
  auto costed = make_trial(1, 72.0);
  costed.started_from = "32W32A run 0123456789ab trial 1";
  costed.epochs_trained = 4;
  costed.images_seen = 40000;
  writer.record_trial(run, costed);
  const auto stored = writer.trials(run).at(1);
  CHECK(stored.started_from == costed.started_from);
  CHECK(stored.epochs_trained == 4);
  CHECK(stored.images_seen == 40000);
  CHECK(writer.summaries().at(0).epochs_trained == Approx(4.0));  // the old trial's is unknown
  const auto id = writer.database_id();
  CHECK(id.size() == 32);
  CHECK(ResultStore(temp.path).database_id() == id);  // kept for the file's life
  CHECK(writer.trials(run).size() == 2);
  TempDb other;
  CHECK(ResultStore(other.path).database_id() != id);
}

TEST_CASE("a read-only store needs an existing lowbit database", "[store]") {
  TempDb temp;
  CHECK_THROWS_WITH(ResultStore(temp.path, lowbit::StoreAccess::read_only),
                    Catch::Contains(temp.path) && Catch::Contains("no such file"));
  CHECK_FALSE(fs::exists(temp.path));
  fs::create_directories(fs::path(temp.path).parent_path());
  {
    RawDb raw(temp.path);
    raw.exec("CREATE TABLE notes (text TEXT)");
  }
  CHECK_THROWS_WITH(ResultStore(temp.path, lowbit::StoreAccess::read_only),
                    Catch::Contains("is not a lowbit results database"));
  CHECK_THROWS_WITH(ResultStore(temp.path), Catch::Contains("other tables: notes"));
  CHECK_THROWS_WITH(ResultStore(":memory:"), Catch::Contains("not a file name"));
}

TEST_CASE("a database that cannot be opened is reported with its path", "[store]") {
  TempDb temp;
  // A folder where the file should be.
  const std::string path = temp.folder.file("is_a_folder");
  fs::create_directories(path);
  CHECK_THROWS_WITH(ResultStore(path), Catch::Contains(path));
}

TEST_CASE("require_experiment names the database, the experiment and the stored ones", "[store]") {
  TempDb temp;
  {
    ResultStore store(temp.path);
    CHECK_THROWS_AS(store.require_experiment("tiny"), std::invalid_argument);
    CHECK_THROWS_WITH(store.require_experiment("tiny"),
                      temp.path + ": no experiment \"tiny\" (stored: none)");
    store.ensure_experiment("b", "b.json", {});
    store.ensure_experiment("a", "a.json", {});
  }
  ResultStore reader(temp.path, lowbit::StoreAccess::read_only);
  CHECK_NOTHROW(reader.require_experiment("a"));
  CHECK_NOTHROW(reader.require_experiment("b"));
  CHECK_NOTHROW(reader.require_experiment(""));  // all experiments
  CHECK_THROWS_WITH(reader.require_experiment("A"),
                    temp.path + ": no experiment \"A\" (stored: a, b)");
}

TEST_CASE("merge refuses a database merged into itself, however it is spelled", "[store][merge]") {
  TempDb temp;
  ResultStore target(temp.path);
  const fs::path folder = fs::path(temp.path).parent_path();
  const std::string link = temp.folder.file("link.db");
  fs::create_symlink(temp.path, link);
  for (const std::string& spelling : {temp.path, (folder / "." / "results.db").string(),
                                      (folder / ".." / "nested" / "results.db").string(), link}) {
    INFO(spelling);
    CHECK_THROWS_AS(lowbit::refuse_self_merge(target, spelling), std::invalid_argument);
    CHECK_THROWS_WITH(lowbit::refuse_self_merge(target, spelling),
                      spelling + ": cannot merge a database into itself");
  }
  TempDb other;
  { ResultStore source(other.path); }
  CHECK_NOTHROW(lowbit::refuse_self_merge(target, other.path));
}
