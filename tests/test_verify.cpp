// `lowbit verify`: stored trials re-trained in a scratch database, bit for bit where the setting
// is the recorded one, else within the run's spread; the CPU each trial records (schema 4).

#include "test_support.h"

#include <lowbit/results/layout.h>
#include <lowbit/results/merge.h>
#include <lowbit/results/paired.h>
#include <lowbit/results/store.h>
#include <lowbit/runner/verify.h>
#include <lowbit/util/cpu.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <sqlite3.h>

#include <fstream>
#include <iterator>
#include <string>

namespace {

using Catch::Matchers::Contains;
using lowbit::testing::count_rows;
using lowbit::testing::lowbit_cli;
using lowbit::testing::TemporaryFolder;
using lowbit::testing::write_experiment;

/// Runs `sql` on the database, as a user editing it by hand would.
void execute(const std::string& db, const std::string& sql) {
  sqlite3* handle = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(handle, sql.c_str(), nullptr, nullptr, &error);
  const std::string message = error != nullptr ? error : "";
  sqlite3_free(error);
  sqlite3_close(handle);
  INFO(sql << ": " << message);
  REQUIRE(rc == SQLITE_OK);
}

/// The single text a query returns ("" when none).
std::string query_text(const std::string& db, const std::string& sql) {
  sqlite3* handle = nullptr;
  std::string value;
  REQUIRE(sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v2(handle, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK &&
      sqlite3_step(statement) == SQLITE_ROW) {
    value = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
  }
  sqlite3_finalize(statement);
  sqlite3_close(handle);
  return value;
}

/// The single number a query returns, as stored (its text would be rounded to 15 digits).
double query_real(const std::string& db, const std::string& sql) {
  sqlite3* handle = nullptr;
  double value = -1;
  REQUIRE(sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v2(handle, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK &&
      sqlite3_step(statement) == SQLITE_ROW) {
    value = sqlite3_column_double(statement, 0);
  }
  sqlite3_finalize(statement);
  sqlite3_close(handle);
  return value;
}

using lowbit::testing::file_bytes;

/// The tiny experiment (32W32A and DoReFa 2W2A fine-tuned from it, 2 trials each) trained into
/// `db` at one thread, its file removed afterwards: verify reads the stored spec only.
void train_tiny_trials(const TemporaryFolder& folder, const std::string& db) {
  const auto file = write_experiment(folder, "tiny.json", lowbit::testing::tiny_experiment());
  auto run = lowbit_cli(fmt::format("run '{}' --db '{}' --threads 1", file, db));
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  boost::filesystem::remove(file);
}

/// Where the 32W32A run's trial 0 is, for UPDATEs.
constexpr const char* kFullPrecisionTrial0 =
    "run_id = (SELECT id FROM runs WHERE weight_bits = 32) AND trial_index = 0";

}  // namespace

TEST_CASE("the CPU's model name is the first model name line of cpuinfo", "[verify]") {
  TemporaryFolder folder;
  const auto cpuinfo = folder.file("cpuinfo");
  std::ofstream(cpuinfo) << "processor\t: 0\nvendor_id\t: AuthenticAMD\n"
                            "model name\t: AMD EPYC 7B13 64-Core Processor  \n"
                            "processor\t: 1\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n";
  CHECK(lowbit::cpu_model_name(cpuinfo) == "AMD EPYC 7B13 64-Core Processor");
  std::ofstream(cpuinfo) << "processor\t: 0\nCPU part\t: 0xd0c\n";  // aarch64 has none
  CHECK(lowbit::cpu_model_name(cpuinfo) == "unknown");
  CHECK(lowbit::cpu_model_name(folder.file("missing")) == "unknown");
  CHECK_FALSE(lowbit::cpu_model_name().empty());
}

TEST_CASE("the 95% prediction interval widens the mean's interval by sqrt(1 + 1/n)", "[verify]") {
  // 1, 2, 3: mean 2, s 1, t(2 df, 0.975) = 4.302653; half-width 4.302653 * sqrt(4/3).
  const auto interval = lowbit::prediction_interval({1.0, 2.0, 3.0});
  REQUIRE(interval);
  CHECK(interval->values == 3);
  CHECK(interval->mean == Approx(2.0));
  CHECK(interval->low == Approx(2.0 - 4.968275).epsilon(1e-6));
  CHECK(interval->high == Approx(2.0 + 4.968275).epsilon(1e-6));
  CHECK(lowbit::student_t_975(1) == Approx(12.7062).epsilon(1e-5));
  CHECK_FALSE(lowbit::prediction_interval({70.0}));
  // Equal values: no spread, an interval of that value only.
  const auto flat = lowbit::prediction_interval({70.0, 70.0});
  REQUIRE(flat);
  CHECK(flat->low == 70.0);
  CHECK(flat->high == 70.0);
}

TEST_CASE("a version-3 database reads its trials' CPU as unknown; a writer migrates it",
          "[verify][store]") {
  TemporaryFolder folder;
  const auto db = folder.file("old.db");
  lowbit::RunRecord run;
  run.hash = "0123456789abcdef0123456789abcdef01234567";
  run.model = "resnet20";
  run.quantizer = "dorefa";
  run.method = "dorefa";
  run.config = nlohmann::json::object();
  int64_t run_id = 0;
  {
    lowbit::ResultStore store(db);
    run_id = store.ensure_run(store.ensure_experiment("e", "e.json", {}), run);
    lowbit::TrialRecord trial;
    trial.cpu = "Some CPU";
    store.record_trial(run_id, trial);
    CHECK(store.trials(run_id).at(0).cpu == "Some CPU");
  }
  CHECK(count_rows(db, "PRAGMA user_version") == 4);
  execute(db, "ALTER TABLE trials DROP COLUMN cpu; PRAGMA user_version = 3;");
  {
    lowbit::ResultStore reader(db, lowbit::StoreAccess::read_only);
    CHECK(reader.trials(run_id).at(0).cpu == "unknown");
  }
  CHECK(count_rows(db, "PRAGMA user_version") == 3);
  {
    lowbit::ResultStore writer(db);
    CHECK(count_rows(db, "PRAGMA user_version") == 4);
    CHECK(writer.trials(run_id).at(0).cpu == "unknown");
    lowbit::TrialRecord trial;
    trial.trial_index = 1;
    trial.cpu = "Another CPU";
    writer.record_trial(run_id, trial);
  }
  // merge copies it.
  lowbit::ResultStore target(folder.file("merged.db"));
  lowbit::ResultStore source(db, lowbit::StoreAccess::read_only);
  CHECK(lowbit::merge_results(target, source).trials_added == 2);
  const auto merged = target.trials(target.runs("e").at(0).id);
  REQUIRE(merged.size() == 2);
  CHECK(merged[0].cpu == "unknown");
  CHECK(merged[1].cpu == "Another CPU");
}

TEST_CASE("verify re-trains a stored trial bit for bit from the stored spec", "[verify][e2e]") {
  TemporaryFolder folder;
  const auto db = folder.file("results.db");
  train_tiny_trials(folder, db);
  CHECK(query_text(db, "SELECT DISTINCT cpu FROM trials") == lowbit::cpu_model_name());
  const auto before = file_bytes(db);

  auto verify = lowbit_cli(fmt::format("verify tiny --db '{}' --trials 1", db));
  INFO(verify.output);
  CHECK(verify.exit_code == 0);
  CHECK_THAT(verify.output, Contains("re-training 1 of its 4 finished trials"));
  CHECK_THAT(verify.output, Contains("run resnet20 dorefa 32W32A "));
  CHECK_THAT(verify.output, Contains(" trial 0: PASS"));
  CHECK_THAT(verify.output,
             Contains(fmt::format("bit for bit: same device cpu (1 thread), LibTorch {}, CPU {}",
                                  query_text(db, "SELECT torch_version FROM trials LIMIT 1"),
                                  lowbit::cpu_model_name())));
  CHECK_THAT(verify.output, Contains("tiny: 1 of 1 trials PASS, 0 MISMATCH (1 trained"));
  // The user's database is only read.
  CHECK(file_bytes(db) == before);

  auto unknown = lowbit_cli(fmt::format("verify nosuch --db '{}'", db));
  CHECK(unknown.exit_code == 1);
  CHECK_THAT(unknown.output, Contains("no experiment \"nosuch\" (stored: tiny)"));
}

TEST_CASE("verify names a tampered trial, expected and got, and fails", "[verify][e2e]") {
  TemporaryFolder folder;
  const auto db = folder.file("results.db");
  train_tiny_trials(folder, db);
  const double top1 =
      query_real(db, fmt::format("SELECT top1 FROM trials WHERE {}", kFullPrecisionTrial0));
  execute(db, fmt::format("UPDATE trials SET top1 = 12.5 WHERE {}", kFullPrecisionTrial0));

  auto verify = lowbit_cli(fmt::format("verify tiny --db '{}' --trials 1", db));
  INFO(verify.output);
  CHECK(verify.exit_code == 2);
  CHECK_THAT(verify.output, Contains(" trial 0: MISMATCH"));
  CHECK_THAT(verify.output, Contains("expected  top-1 12.5 "));
  CHECK_THAT(verify.output, Contains(fmt::format("got       top-1 {} ", top1)));
  CHECK_THAT(verify.output,
             Contains(fmt::format("why       final top-1: expected 12.5, got {}", top1)));
  CHECK_THAT(verify.output, Contains("tiny: 0 of 1 trials PASS, 1 MISMATCH"));
}

TEST_CASE("a trial recorded on another CPU is held to its run's spread", "[verify][e2e]") {
  TemporaryFolder folder;
  const auto db = folder.file("results.db");
  train_tiny_trials(folder, db);
  execute(db, fmt::format("UPDATE trials SET cpu = 'Imaginary CPU 9000' WHERE {}",
                          kFullPrecisionTrial0));

  auto verify = lowbit_cli(fmt::format("verify tiny --db '{}' --trials 1", db));
  INFO(verify.output);
  CHECK(verify.exit_code == 0);
  CHECK_THAT(verify.output, Contains(" trial 0: PASS"));
  CHECK_THAT(verify.output,
             Contains(fmt::format("within spread: recorded on Imaginary CPU 9000, re-trained on {}",
                                  lowbit::cpu_model_name())));
  CHECK_THAT(verify.output, Contains("95% prediction interval of the run's 2 stored trials"));

  // With one stored trial there is no spread to compare with.
  execute(db,
          "DELETE FROM trials WHERE run_id = (SELECT id FROM runs WHERE weight_bits = 32) "
          "AND trial_index = 1");
  auto alone = lowbit_cli(fmt::format("verify tiny --db '{}' --trials 1", db));
  INFO(alone.output);
  CHECK(alone.exit_code == 2);
  CHECK_THAT(alone.output, Contains(" trial 0: MISMATCH"));
  CHECK_THAT(alone.output, Contains("why       no spread to compare with (1 trial)"));
}

TEST_CASE("a quantized trial starts from its source's stored weights and trains alone",
          "[verify]") {
  TemporaryFolder folder;
  const auto db = folder.file("results.db");
  train_tiny_trials(folder, db);
  auto& components = lowbit::testing::shared_components();
  lowbit::ResultStore stored(db, lowbit::StoreAccess::read_only);
  const auto experiment = lowbit::stored_experiment(stored, "tiny", components.registry);
  const auto selection = lowbit::select_trials(stored, experiment, 10);
  // Sweep order: the 32W32A run's trials, then the 2W2A run's.
  REQUIRE(selection.trials.size() == 4);
  CHECK(selection.finished_trials == 4);
  CHECK(selection.trials[0].run.record.weight_bits == 32);
  CHECK(selection.trials[1].stored.trial_index == 1);
  const auto& source = selection.trials[0].run.record;
  const auto& quantized = selection.trials[2];
  REQUIRE(quantized.run.record.weight_bits == 2);
  REQUIRE(quantized.stored.trial_index == 0);

  auto report = lowbit::verify_trials(components.registry, components.plugins, stored, experiment,
                                      {quantized}, lowbit::VerifyOptions{});
  REQUIRE(report.verdicts.size() == 1);
  const auto& verdict = report.verdicts[0];
  INFO(lowbit::format_verdict(verdict));
  CHECK(report.trials_trained == 1);
  CHECK(verdict.passed);
  CHECK(verdict.test == lowbit::VerifyTest::bit_for_bit);
  CHECK(verdict.note == fmt::format("started from the stored weights of 32W32A run {} trial 0",
                                    source.hash.substr(0, 12)));
  CHECK(report.mismatches() == 0);

  // Without the source's weights, the scratch sweep trains the source first.
  boost::filesystem::remove(lowbit::trial_weights_path(db, source.hash, 0));
  report = lowbit::verify_trials(components.registry, components.plugins, stored, experiment,
                                 {quantized}, lowbit::VerifyOptions{});
  REQUIRE(report.verdicts.size() == 1);
  INFO(lowbit::format_verdict(report.verdicts[0]));
  CHECK(report.trials_trained == 2);
  CHECK_THAT(report.verdicts[0].note, Contains("was trained first in the scratch database"));
  CHECK(report.verdicts[0].passed);
}
