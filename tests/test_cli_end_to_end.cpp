// Drives the real `lowbit` binary: a tiny sweep into SQLite, resume, tables, bad input.

#include <lowbit/results/store.h>

#include "test_support.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <sqlite3.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

using Catch::Matchers::Contains;

namespace {

using lowbit::testing::count_rows;
using lowbit::testing::lowbit_cli;
using lowbit::testing::query_integer;
using lowbit::testing::write_experiment;

}  // namespace

TEST_CASE("a tiny sweep trains, stores every trial and epoch, and renders its table", "[e2e]") {
  lowbit::testing::TemporaryFolder folder;
  const auto db = folder.file("results.db");
  const auto experiment = write_experiment(folder, "tiny.json", lowbit::testing::tiny_experiment());

  auto run = lowbit_cli(fmt::format("run '{}' --db '{}' --threads 1", experiment, db));
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK_THAT(run.output, Contains("epoch 2/2"));
  CHECK_THAT(run.output, Contains("4 trials run, 0 already finished, 0 failed"));

  CHECK(count_rows(db, "SELECT COUNT(*) FROM runs") == 2);
  CHECK(count_rows(db, "SELECT COUNT(*) FROM trials WHERE status = 'finished'") == 4);
  CHECK(count_rows(db, "SELECT COUNT(*) FROM epochs") == 8);
  CHECK(count_rows(
            db, "SELECT COUNT(*) FROM trials WHERE torch_version <> '' AND seed IN (11, 12)") == 4);
  CHECK(count_rows(db, "SELECT COUNT(*) FROM run_stats WHERE trials = 2") == 2);
  CHECK(count_rows(
            db,
            "SELECT COUNT(*) FROM trials WHERE plugin_hashes_json LIKE '%liblowbit_dorefa.so%'") ==
        4);

  // Every finished trial leaves its weights in the database's own folder, and nothing beside it.
  CHECK(boost::filesystem::is_directory(db + ".d/weights"));
  CHECK_FALSE(boost::filesystem::exists(folder.file("weights")));
  int64_t weight_files = 0;
  for (const auto& entry : boost::filesystem::recursive_directory_iterator(db + ".d/weights")) {
    if (entry.path().extension() == ".pt") ++weight_files;
  }
  CHECK(weight_files == 4);

  // The run prints the experiment's table; `lowbit table` renders the same from the database.
  CHECK_THAT(run.output, Contains("32W32A"));
  CHECK_THAT(run.output, Contains("2W2A"));
  auto table = lowbit_cli(fmt::format("table --db '{}' --experiment tiny", db));
  REQUIRE(table.exit_code == 0);
  CHECK_THAT(table.output, Contains("resnet20"));
  CHECK_THAT(table.output, Contains("Top-1"));
  CHECK_THAT(table.output, Contains("±"));

  const auto latex_file = folder.file("table.tex");
  auto latex = lowbit_cli(fmt::format("table --db '{}' --format latex -o '{}'", db, latex_file));
  REQUIRE(latex.exit_code == 0);
  std::stringstream latex_text;
  latex_text << std::ifstream(latex_file).rdbuf();
  CHECK_THAT(latex_text.str(), Contains("\\begin{tabular}"));
  CHECK_THAT(latex_text.str(), Contains("$\\pm$"));

  auto csv = lowbit_cli(fmt::format("table --db '{}' --format csv", db));
  CHECK_THAT(csv.output, Contains("precision,metric,"));

  // Running it again trains nothing: every trial is already there.
  auto again = lowbit_cli(fmt::format("run '{}' --db '{}' --threads 1", experiment, db));
  REQUIRE(again.exit_code == 0);
  CHECK_THAT(again.output, Contains("0 trials run, 4 already finished"));
  CHECK(count_rows(db, "SELECT COUNT(*) FROM trials") == 4);
}

TEST_CASE("raising the trial count resumes the sweep without repeating trials", "[e2e]") {
  lowbit::testing::TemporaryFolder folder;
  const auto db = folder.file("results.db");
  auto spec = lowbit::testing::tiny_experiment();
  spec["precisions"] = {"2W2A"};
  spec["trials"] = 1;
  auto first = lowbit_cli(fmt::format("run '{}' --db '{}' --threads 1",
                                      write_experiment(folder, "one.json", spec), db));
  REQUIRE(first.exit_code == 0);
  spec["trials"] = 2;
  auto second = lowbit_cli(fmt::format("run '{}' --db '{}' --threads 1",
                                       write_experiment(folder, "two.json", spec), db));
  INFO(second.output);
  REQUIRE(second.exit_code == 0);
  CHECK_THAT(second.output, Contains("1 trials run, 1 already finished"));
  CHECK(count_rows(db, "SELECT COUNT(*) FROM trials") == 2);
  CHECK(count_rows(db, "SELECT COUNT(DISTINCT seed) FROM trials") == 2);
}

TEST_CASE("a sweep killed mid-trial resumes without losing or duplicating trials", "[e2e]") {
  lowbit::testing::TemporaryFolder folder;
  const auto db = folder.file("results.db");
  auto spec = lowbit::testing::tiny_experiment();
  spec["precisions"] = {"2W2A"};
  spec["trials"] = 4;
  spec["training"]["epochs"] = 3;
  const auto file = write_experiment(folder, "killed.json", spec);

  const std::string command = fmt::format(
      "exec '{}/bin/lowbit' run '{}' --db '{}' --threads 1 "
      ">/dev/null 2>&1",
      LOWBIT_BINARY_DIR, file, db);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Kill it hard once some, but not all, trials are stored.
  int64_t stored = 0;
  for (int i = 0; i < 1200 && stored <= 0; ++i) {
    ::usleep(50 * 1000);
    if (boost::filesystem::exists(db)) stored = query_integer(db, "SELECT COUNT(*) FROM trials");
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(stored >= 1);
  const int64_t before = count_rows(db, "SELECT COUNT(*) FROM trials");
  REQUIRE(before < 4);

  auto resumed = lowbit_cli(fmt::format("run '{}' --db '{}' --threads 1", file, db));
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK_THAT(resumed.output,
             Contains(fmt::format("{} trials run, {} already finished", 4 - before, before)));
  CHECK(count_rows(db, "SELECT COUNT(*) FROM trials") == 4);
  CHECK(count_rows(db, "SELECT COUNT(DISTINCT trial_index) FROM trials") == 4);
  CHECK(count_rows(db, "SELECT COUNT(*) FROM epochs") == 4 * 3);
}

TEST_CASE("jobs split a sweep over processes sharing one database", "[e2e][parallel]") {
  lowbit::testing::TemporaryFolder folder;
  const auto db = folder.file("results.db");
  auto spec = lowbit::testing::tiny_experiment();
  spec["trials"] = 3;
  spec["training"]["epochs"] = 1;
  const auto file = write_experiment(folder, "jobs.json", spec);
  auto run = lowbit_cli(fmt::format("run '{}' --db '{}' --jobs 3 --threads 1", file, db));
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK_THAT(run.output, Contains("left to other shards"));
  CHECK_THAT(run.output, Contains("(n=3)"));
  // 3 one-thread jobs oversubscribe a machine with fewer than 3 hardware threads (CI has 2).
  const bool oversubscribed = std::thread::hardware_concurrency() < 3;
  CHECK((run.output.find("oversubscribe") != std::string::npos) == oversubscribed);
  CHECK(count_rows(db, "SELECT COUNT(*) FROM trials WHERE status = 'finished'") == 6);
  CHECK(count_rows(db, "SELECT COUNT(DISTINCT run_id || '-' || trial_index) FROM trials") == 6);

  // Shards of a finished sweep find nothing left to do.
  auto again = lowbit_cli(fmt::format("run '{}' --db '{}' --shard 1/3", file, db));
  CHECK_THAT(again.output,
             Contains("0 trials run, 2 already finished, 0 failed, 4 left to other shards"));
}

TEST_CASE("bad input is refused before anything is written", "[e2e]") {
  lowbit::testing::TemporaryFolder folder;
  const auto db = folder.file("results.db");
  auto spec = lowbit::testing::tiny_experiment();
  spec["precisions"] = {"2W2A", "3W"};
  const auto file = write_experiment(folder, "bad.json", spec);
  auto run = lowbit_cli(fmt::format("run '{}' --db '{}'", file, db));
  CHECK(run.exit_code == 1);
  CHECK_THAT(run.output, Contains("bad.json: /precisions/1"));
  CHECK_THAT(run.output, Contains("allowed:"));
  CHECK_FALSE(boost::filesystem::exists(db));

  auto table = lowbit_cli(fmt::format("table --db '{}' --format html", db));
  CHECK(table.exit_code != 0);
}

TEST_CASE("lowbit plugins lists every component with its origin", "[e2e]") {
  auto listing = lowbit_cli("plugins");
  INFO(listing.output);
  REQUIRE(listing.exit_code == 0);
  CHECK_THAT(listing.output, Contains("quantizer  dorefa"));
  CHECK_THAT(listing.output, Contains("liblowbit_dorefa.so"));
  CHECK_THAT(listing.output, Contains("model      resnet20"));
  CHECK_THAT(listing.output, Contains("built-in"));

  auto broken = lowbit_cli(fmt::format("--plugin-dir '{}' plugins", LOWBIT_FIXTURE_DIR));
  CHECK(broken.exit_code == 1);
  CHECK_THAT(broken.output, Contains("FAILED"));
  CHECK_THAT(broken.output, Contains("wrong_api_version.so"));
}

TEST_CASE("a dry run validates and lists the runs without a database", "[e2e]") {
  lowbit::testing::TemporaryFolder folder;
  const auto db = folder.file("results.db");
  const auto file = write_experiment(folder, "tiny.json", lowbit::testing::tiny_experiment());
  auto run = lowbit_cli(fmt::format("run '{}' --db '{}' --dry-run", file, db));
  REQUIRE(run.exit_code == 0);
  CHECK_THAT(run.output, Contains("2 runs x 2 trials"));
  CHECK_FALSE(boost::filesystem::exists(db));
}

TEST_CASE("commands refuse what they cannot do with exit code 1 and a message", "[e2e]") {
  lowbit::testing::TemporaryFolder folder;
  const auto db = folder.file("results.db");
  {
    lowbit::ResultStore store(db);
    store.ensure_experiment("tiny", "tiny.json", lowbit::testing::tiny_experiment());
  }
  auto table = lowbit_cli(fmt::format("table --db '{}' --experiment nosuch", db));
  CHECK(table.exit_code == 1);
  CHECK_THAT(table.output, Contains(fmt::format(
                               "lowbit: error: {}: no experiment \"nosuch\" (stored: tiny)", db)));

  const auto same_file = folder.path() + "/./results.db";
  auto merge = lowbit_cli(fmt::format("merge --db '{}' '{}'", db, same_file));
  CHECK(merge.exit_code == 1);
  CHECK_THAT(
      merge.output,
      Contains(fmt::format("lowbit: error: {}: cannot merge a database into itself", same_file)));

  const auto file = write_experiment(folder, "tiny.json", lowbit::testing::tiny_experiment());
  auto run = lowbit_cli(fmt::format("run '{}' --db '{}' --jobs 2 --shard 1/2", file, db));
  CHECK(run.exit_code == 1);
  CHECK_THAT(run.output, Contains("lowbit: error: --jobs and --shard do not combine"));
}
