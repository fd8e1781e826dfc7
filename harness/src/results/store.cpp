#include <lowbit/results/store.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/util/hash.h>

#include "results/sqlite_statement.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace lowbit {
namespace {

using sqlite::Statement;
using sqlite::Transaction;

/// Bump when the schema changes, and teach open_schema() to migrate from the older versions.
/// 2: `meta` (the database's identity) and `claims` (trials being trained, with their owners).
/// 3: trials.started_from, epochs_trained, images_seen (what a trial started from, its cost).
/// 4: trials.cpu (the CPU's model: a CPU trial repeats bit for bit only on the same one).
constexpr int64_t kSchemaVersion = 4;

/// The tables of every version; a file with other tables belongs to another program.
constexpr const char* kLowbitTables[] = {"experiments", "runs", "trials", "epochs",
                                         "run_stats",   "meta", "claims"};

/// Waiting this long for another process's write lock lets several sweeps share one database.
constexpr int kBusyTimeoutMs = 10000;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS experiments (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  file TEXT NOT NULL,
  spec_json TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY,
  experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
  hash TEXT NOT NULL,
  model TEXT NOT NULL,
  quantizer TEXT NOT NULL,
  weight_bits INTEGER NOT NULL,
  activation_bits INTEGER NOT NULL,
  strategies TEXT NOT NULL,
  method TEXT NOT NULL,
  config_json TEXT NOT NULL,
  UNIQUE (experiment_id, hash)
);
CREATE TABLE IF NOT EXISTS trials (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  trial_index INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('finished', 'failed')),
  error TEXT NOT NULL DEFAULT '',
  top1 REAL,
  top5 REAL,
  final_loss REAL,
  wall_seconds REAL,
  images_per_second REAL,
  device TEXT NOT NULL DEFAULT '',
  torch_version TEXT NOT NULL DEFAULT '',
  cuda_version TEXT NOT NULL DEFAULT '',
  plugin_hashes_json TEXT NOT NULL DEFAULT '{}',
  extra_json TEXT NOT NULL DEFAULT '{}',
  finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  started_from TEXT NOT NULL DEFAULT '',
  epochs_trained INTEGER NOT NULL DEFAULT 0,
  images_seen INTEGER NOT NULL DEFAULT 0,
  cpu TEXT NOT NULL DEFAULT 'unknown',
  UNIQUE (run_id, trial_index)
);
CREATE TABLE IF NOT EXISTS epochs (
  trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  epoch INTEGER NOT NULL,
  stage TEXT NOT NULL,
  weight_bits INTEGER NOT NULL,
  activation_bits INTEGER NOT NULL,
  learning_rate REAL,
  train_loss REAL,
  train_top1 REAL,
  test_top1 REAL,
  test_top5 REAL,
  images_per_second REAL,
  seconds REAL,
  extra_json TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (trial_id, epoch)
);
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  trial_index INTEGER NOT NULL,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  token TEXT NOT NULL,
  heartbeat REAL NOT NULL,
  PRIMARY KEY (run_id, trial_index)
);
CREATE TABLE IF NOT EXISTS run_stats (
  run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
  trials INTEGER NOT NULL,
  top1_mean REAL NOT NULL,
  top1_std REAL NOT NULL,
  top5_mean REAL NOT NULL,
  top5_std REAL NOT NULL,
  images_per_second_mean REAL NOT NULL,
  updated_at TEXT NOT NULL
);
)sql";

void create_parent_folder(const std::string& path) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code error;
  std::filesystem::create_directories(parent, error);
  if (error) {
    throw std::runtime_error(fmt::format("results database {}: cannot create folder {}: {}", path,
                                         parent.string(), error.message()));
  }
}

int64_t pragma_int(sqlite3* db, const std::string& path, const char* sql) {
  Statement statement(db, path, sql);
  return statement.step() ? statement.int64(0) : 0;
}

/// Returns the journal mode after asking for WAL; ":memory:" databases stay "memory".
std::string request_wal(sqlite3* db, const std::string& path) {
  Statement journal(db, path, "PRAGMA journal_mode = WAL");
  return journal.step() ? journal.text(0) : "";
}

// WAL is a property of the file: once one process switched it, the others find it on. The switch
// itself needs an exclusive lock and SQLite answers "locked" without consulting the busy handler
// while another process is creating the file, so it is retried here for the same time budget.
void switch_to_wal(sqlite3* db, const std::string& path) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  std::string mode;
  for (;;) {
    try {
      mode = request_wal(db, path);
      break;
    } catch (const std::runtime_error&) {
      const int code = sqlite3_errcode(db);
      const bool busy = code == SQLITE_BUSY || code == SQLITE_LOCKED;
      if (!busy || std::chrono::steady_clock::now() > deadline) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  if (mode != "wal" && path != ":memory:") {
    throw std::runtime_error(
        fmt::format("results database {}: cannot switch to WAL (got \"{}\")", path, mode));
  }
}

// Connection settings are per connection, and journal_mode cannot change inside a transaction,
// so they come before any schema work.
void configure_connection(sqlite3* db, const std::string& path) {
  Statement(db, path, "PRAGMA foreign_keys = ON").run();
  switch_to_wal(db, path);
}

void refuse_newer_schema(int64_t found, const std::string& path) {
  if (found <= kSchemaVersion) return;
  throw std::runtime_error(fmt::format(
      "results database {} has schema version {}, but this build knows only up to version {}; "
      "use a newer lowbit or another database file",
      path, found, kSchemaVersion));
}

std::vector<std::string> foreign_tables(sqlite3* db, const std::string& path) {
  Statement select(db, path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
  std::vector<std::string> foreign;
  while (select.step()) {
    const auto name = select.text(0);
    const bool ours = std::find(std::begin(kLowbitTables), std::end(kLowbitTables), name) !=
                      std::end(kLowbitTables);
    if (!ours && name.rfind("sqlite_", 0) != 0) foreign.push_back(name);
  }
  return foreign;
}

/// A file that has no lowbit schema version is lowbit's only while it is empty: lowbit never
/// adds its tables to another program's database.
void refuse_foreign_database(sqlite3* db, const std::string& path, int64_t version) {
  if (version > 0) return;
  const auto foreign = foreign_tables(db, path);
  if (foreign.empty()) return;
  std::string names;
  for (const auto& name : foreign) names += (names.empty() ? "" : ", ") + name;
  throw std::runtime_error(fmt::format(
      "{} is not a lowbit results database (it has other tables: {}); give --db a new file or a "
      "lowbit database",
      path, names));
}

/// RunSummary::init from a run's configuration (see experiment.cpp's resolve_init).
std::string init_of(const nlohmann::json& config) {
  const auto found = config.find("init");
  if (found == config.end() || !found->is_object()) return "";
  if (found->contains("full_precision")) return "full_precision";
  if (found->contains("checkpoint_sha1"))
    return "checkpoint " + found->value("checkpoint_sha1", "");
  return "";
}

bool has_column(sqlite3* db, const std::string& path, const char* table, const char* column) {
  Statement select(db, path, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2");
  return select.bind_all(std::string(table), std::string(column)).step();
}

/// Columns added to tables after their first version, with their definitions; a database of an
/// older version gains them (its trials keep the defaults: 0 and "unknown" read as "not
/// recorded").
constexpr std::array<std::array<const char*, 3>, 4> kAddedColumns{{
    {"trials", "started_from", "TEXT NOT NULL DEFAULT ''"},
    {"trials", "epochs_trained", "INTEGER NOT NULL DEFAULT 0"},
    {"trials", "images_seen", "INTEGER NOT NULL DEFAULT 0"},
    {"trials", "cpu", "TEXT NOT NULL DEFAULT 'unknown'"},
}};

void add_missing_columns(sqlite3* db, const std::string& path) {
  for (const auto& [table, column, definition] : kAddedColumns) {
    if (has_column(db, path, table, column)) continue;
    // Our own constants, not input: ALTER TABLE takes no bound parameters.
    Statement(db, path, fmt::format("ALTER TABLE {} ADD COLUMN {} {}", table, column, definition))
        .run();
  }
}

// The version is re-read under the write lock: another process may have created the schema
// between our first look and BEGIN IMMEDIATE.
void open_schema(sqlite3* db, const std::string& path) {
  refuse_newer_schema(pragma_int(db, path, "PRAGMA user_version"), path);
  Transaction transaction(db, path);
  const int64_t version = pragma_int(db, path, "PRAGMA user_version");
  refuse_newer_schema(version, path);
  if (version < kSchemaVersion) {
    // Every statement is CREATE ... IF NOT EXISTS: version 1 gains the tables version 2 added.
    if (sqlite3_exec(db, kSchema, nullptr, nullptr, nullptr) != SQLITE_OK) {
      sqlite::throw_error(db, path, "cannot create the schema");
    }
    add_missing_columns(db, path);
    // A database's identity goes into its checkpoints, so another database's are recognised.
    Statement(db, path, "INSERT OR IGNORE INTO meta (key, value) VALUES ('database_id', ?1)")
        .bind(1, random_hex(16))
        .run();
    // PRAGMA takes no bound parameters; the value is our own constant, not input.
    Statement(db, path, fmt::format("PRAGMA user_version = {}", kSchemaVersion)).run();
  }
  transaction.commit();
}

/// A reader never creates or migrates anything, but still refuses what it cannot read.
void check_readable_schema(sqlite3* db, const std::string& path) {
  const int64_t version = pragma_int(db, path, "PRAGMA user_version");
  refuse_newer_schema(version, path);
  Statement experiments(
      db, path, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'experiments'");
  if (version == 0 || !experiments.step()) {
    throw std::runtime_error(
        fmt::format("{} is not a lowbit results database (no lowbit schema in it)", path));
  }
}

/// `file:` URI of a path, every byte outside the unreserved set percent-encoded.
std::string file_uri(const std::string& path, const std::string& query) {
  std::string uri = "file:";
  for (unsigned char c : std::filesystem::absolute(path).string()) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '.' || c == '_' || c == '~') {
      uri += static_cast<char>(c);
    } else {
      uri += fmt::format("%{:02X}", c);
    }
  }
  return uri + "?" + query;
}

/// How a reader opens the file without writing anything: SQLite's read-only connection to a WAL
/// database still creates (and leaves) the -shm and -wal files, and fails where the user may not
/// write the folder. Without a -wal file no connection is open and every commit is in the main
/// file, so it is opened as immutable (no side files, no locks); with one, a sweep is writing, and
/// the reader joins its WAL read-only.
std::string reader_uri(const std::string& path) {
  const bool wal_in_use = std::filesystem::exists(path + "-wal");
  return file_uri(path, wal_in_use ? "mode=ro" : "mode=ro&immutable=1");
}

/// ":memory:" and "" are private, temporary databases: a sweep's results would vanish with it.
void refuse_temporary_database(const std::string& path) {
  if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0) {
    throw std::invalid_argument(fmt::format(
        "results database \"{}\": not a file name (allowed: a path such as results/lowbit.db)",
        path));
  }
}

std::string metrics_to_json(const std::map<std::string, double>& metrics) {
  return nlohmann::json(metrics).dump();
}

// A non-finite metric is dumped as JSON null; read it back as NaN instead of failing the read.
std::map<std::string, double> metrics_from_json(const std::string& text) {
  const nlohmann::json parsed = nlohmann::json::parse(text);  // items() must not outlive it
  std::map<std::string, double> metrics;
  for (const auto& [key, value] : parsed.items()) {
    metrics[key] =
        value.is_number() ? value.get<double>() : std::numeric_limits<double>::quiet_NaN();
  }
  return metrics;
}

struct MeanStd {
  double mean = 0;
  double std = 0;
};

/// Mean and sample standard deviation (n-1); the deviation of a single value is 0.
MeanStd mean_std(const std::vector<double>& values) {
  MeanStd result;
  if (values.empty()) return result;
  for (double value : values) result.mean += value;
  result.mean /= static_cast<double>(values.size());
  if (values.size() < 2) return result;
  double squares = 0;
  for (double value : values) squares += (value - result.mean) * (value - result.mean);
  result.std = std::sqrt(squares / static_cast<double>(values.size() - 1));
  return result;
}

/// A trial's status as the database holds it. The schema admits only the names of
/// trial_statuses(), so another is a damaged file: said with the file, the trial and the names.
TrialStatus stored_status(const std::string& path, int64_t trial_index, const std::string& text) {
  try {
    return parse_trial_status(text);
  } catch (const std::invalid_argument&) {
    std::vector<std::string> allowed;
    for (const auto& [name, status] : trial_statuses()) allowed.push_back("\"" + name + "\"");
    throw std::invalid_argument(
        fmt::format("results database {}: trial {} has status \"{}\"; allowed: {}", path,
                    trial_index, text, join(allowed)));
  }
}

/// Removes a failed attempt at the same index (its epochs cascade); refuses to overwrite a
/// finished one.
void clear_previous_attempt(sqlite3* db, const std::string& path, int64_t run_id,
                            int64_t trial_index) {
  Statement find(db, path, "SELECT id, status FROM trials WHERE run_id = ?1 AND trial_index = ?2");
  find.bind_all(run_id, trial_index);
  if (!find.step()) return;
  if (stored_status(path, trial_index, find.text(1)) == TrialStatus::finished) {
    throw TrialAlreadyFinished(
        fmt::format("results database {}: trial {} of run {} is already recorded as finished", path,
                    trial_index, run_id));
  }
  Statement(db, path, "DELETE FROM trials WHERE id = ?1").bind(1, find.int64(0)).run();
}

int64_t insert_trial(sqlite3* db, const std::string& path, int64_t run_id,
                     const TrialRecord& trial) {
  Statement insert(db, path, R"sql(
      INSERT INTO trials (run_id, trial_index, seed, status, error, top1, top5, final_loss,
                          wall_seconds, images_per_second, device, torch_version, cuda_version,
                          plugin_hashes_json, extra_json, started_from, epochs_trained,
                          images_seen, cpu)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
              ?18, ?19))sql");
  // SQLite integers are signed 64-bit; the seed keeps its bit pattern and is cast back on read.
  insert.bind_all(run_id, trial.trial_index, static_cast<int64_t>(trial.seed),
                  to_string(trial.status), trial.error, trial.top1, trial.top5, trial.final_loss,
                  trial.wall_seconds, trial.images_per_second, trial.device, trial.torch_version,
                  trial.cuda_version, trial.plugin_hashes.dump(), metrics_to_json(trial.extra),
                  trial.started_from, trial.epochs_trained, trial.images_seen, trial.cpu);
  insert.run();
  return sqlite3_last_insert_rowid(db);
}

void insert_epochs(sqlite3* db, const std::string& path, int64_t trial_id,
                   const std::vector<EpochRecord>& epochs) {
  Statement insert(db, path, R"sql(
      INSERT INTO epochs (trial_id, epoch, stage, weight_bits, activation_bits, learning_rate,
                          train_loss, train_top1, test_top1, test_top5, images_per_second, seconds,
                          extra_json)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13))sql");
  for (const EpochRecord& epoch : epochs) {
    insert.bind_all(trial_id, epoch.epoch, epoch.stage, epoch.weight_bits, epoch.activation_bits,
                    epoch.learning_rate, epoch.train_loss, epoch.train_top1, epoch.test_top1,
                    epoch.test_top5, epoch.images_per_second, epoch.seconds,
                    metrics_to_json(epoch.extra));
    insert.run();
    insert.reset();
  }
}

/// Recomputes the run's aggregate over its finished trials (in C++: SQLite's math functions are
/// an optional build feature).
void refresh_run_stats(sqlite3* db, const std::string& path, int64_t run_id) {
  Statement select(db, path, R"sql(
      SELECT top1, top5, images_per_second FROM trials
      WHERE run_id = ?1 AND status = 'finished')sql");
  select.bind(1, run_id);
  std::vector<double> top1, top5, speed;
  while (select.step()) {
    top1.push_back(select.real(0));
    top5.push_back(select.real(1));
    speed.push_back(select.real(2));
  }
  if (top1.empty()) {
    Statement(db, path, "DELETE FROM run_stats WHERE run_id = ?1").bind(1, run_id).run();
    return;
  }
  const MeanStd t1 = mean_std(top1), t5 = mean_std(top5);
  Statement upsert(db, path, R"sql(
      INSERT OR REPLACE INTO run_stats (run_id, trials, top1_mean, top1_std, top5_mean, top5_std,
                                        images_per_second_mean, updated_at)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))sql");
  upsert.bind_all(run_id, static_cast<int64_t>(top1.size()), t1.mean, t1.std, t5.mean, t5.std,
                  mean_std(speed).mean);
  upsert.run();
}

std::vector<EpochRecord> read_epochs(sqlite3* db, const std::string& path, int64_t trial_id) {
  Statement select(db, path, R"sql(
      SELECT epoch, stage, weight_bits, activation_bits, learning_rate, train_loss, train_top1,
             test_top1, test_top5, images_per_second, seconds, extra_json
      FROM epochs WHERE trial_id = ?1 ORDER BY epoch)sql");
  select.bind(1, trial_id);
  std::vector<EpochRecord> epochs;
  while (select.step()) {
    EpochRecord epoch;
    epoch.epoch = select.int64(0);
    epoch.stage = select.text(1);
    epoch.weight_bits = static_cast<int>(select.int64(2));
    epoch.activation_bits = static_cast<int>(select.int64(3));
    epoch.learning_rate = select.real(4);
    epoch.train_loss = select.real(5);
    epoch.train_top1 = select.real(6);
    epoch.test_top1 = select.real(7);
    epoch.test_top5 = select.real(8);
    epoch.images_per_second = select.real(9);
    epoch.seconds = select.real(10);
    epoch.extra = metrics_from_json(select.text(11));
    epochs.push_back(std::move(epoch));
  }
  return epochs;
}

}  // namespace

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

ResultStore::ResultStore(const std::string& path, StoreAccess access) : path_(path) {
  refuse_temporary_database(path_);
  const bool read_only = access == StoreAccess::read_only;
  if (read_only && !std::filesystem::is_regular_file(path_)) {
    throw std::runtime_error(fmt::format("results database {}: no such file", path_));
  }
  if (!read_only) create_parent_folder(path_);
  const int rc = read_only ? sqlite3_open_v2(reader_uri(path_).c_str(), &db_,
                                             SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr)
                           : sqlite3_open_v2(path_.c_str(), &db_,
                                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  // The destructor does not run when a constructor throws, so close the handle here.
  try {
    if (rc != SQLITE_OK) sqlite::throw_error(db_, path_, "cannot open");
    if (read_only) {
      sqlite3_busy_timeout(db_, kBusyTimeoutMs);
      check_readable_schema(db_, path_);
    } else {
      sqlite3_busy_timeout(db_, kBusyTimeoutMs);
      // Before anything is changed: switching to WAL rewrites another program's file too.
      const int64_t version = pragma_int(db_, path_, "PRAGMA user_version");
      refuse_newer_schema(version, path_);
      refuse_foreign_database(db_, path_, version);
      configure_connection(db_, path_);
      open_schema(db_, path_);
    }
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

ResultStore::~ResultStore() { sqlite3_close(db_); }

void ResultStore::execute(const std::string& sql) { Statement(db_, path_, sql).run(); }

int64_t ResultStore::ensure_experiment(const std::string& name, const std::string& file,
                                       const nlohmann::json& spec) {
  Transaction transaction(db_, path_);
  Statement upsert(db_, path_, R"sql(
      INSERT INTO experiments (name, file, spec_json) VALUES (?1, ?2, ?3)
      ON CONFLICT (name) DO UPDATE
        SET file = excluded.file, spec_json = excluded.spec_json,
            updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
        WHERE file IS NOT excluded.file OR spec_json IS NOT excluded.spec_json)sql");
  upsert.bind_all(name, file, spec.dump()).run();
  Statement select(db_, path_, "SELECT id FROM experiments WHERE name = ?1");
  select.bind(1, name).step();
  const int64_t id = select.int64(0);
  transaction.commit();
  return id;
}

int64_t ResultStore::ensure_run(int64_t experiment_id, const RunRecord& run) {
  Transaction transaction(db_, path_);
  Statement insert(db_, path_, R"sql(
      INSERT INTO runs (experiment_id, hash, model, quantizer, weight_bits, activation_bits,
                        strategies, method, config_json)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
      ON CONFLICT (experiment_id, hash) DO NOTHING)sql");
  insert.bind_all(experiment_id, run.hash, run.model, run.quantizer, run.weight_bits,
                  run.activation_bits, nlohmann::json(run.strategies).dump(), run.method,
                  run.config.dump());
  insert.run();
  Statement select(db_, path_, "SELECT id FROM runs WHERE experiment_id = ?1 AND hash = ?2");
  select.bind_all(experiment_id, run.hash).step();
  const int64_t id = select.int64(0);
  transaction.commit();
  return id;
}

bool ResultStore::trial_finished(int64_t run_id, int64_t trial_index) {
  Statement select(db_, path_, R"sql(
      SELECT 1 FROM trials WHERE run_id = ?1 AND trial_index = ?2 AND status = 'finished')sql");
  return select.bind_all(run_id, trial_index).step();
}

void ResultStore::reopen_trial(int64_t run_id, int64_t trial_index) {
  Transaction transaction(db_, path_);
  Statement(db_, path_, "DELETE FROM trials WHERE run_id = ?1 AND trial_index = ?2")
      .bind_all(run_id, trial_index)
      .run();
  refresh_run_stats(db_, path_, run_id);
  transaction.commit();
}

void ResultStore::record_trial(int64_t run_id, const TrialRecord& trial) {
  Transaction transaction(db_, path_);
  clear_previous_attempt(db_, path_, run_id, trial.trial_index);
  const int64_t trial_id = insert_trial(db_, path_, run_id, trial);
  insert_epochs(db_, path_, trial_id, trial.epochs);
  refresh_run_stats(db_, path_, run_id);
  // The trial is decided: whoever claimed it has nothing left to own.
  Statement(db_, path_, "DELETE FROM claims WHERE run_id = ?1 AND trial_index = ?2")
      .bind_all(run_id, trial.trial_index)
      .run();
  transaction.commit();
}

std::string ResultStore::database_id() {
  // A version-1 database opened read-only has no `meta` table to prepare a query against.
  Statement has_meta(db_, path_,
                     "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'");
  if (!has_meta.step()) return "";
  Statement select(db_, path_, "SELECT value FROM meta WHERE key = 'database_id'");
  return select.step() ? select.text(0) : "";
}

TrialClaim ResultStore::claim_trial(int64_t run_id, int64_t trial_index, const ClaimOwner& owner,
                                    const std::function<bool(const ClaimOwner&, double)>& alive) {
  Transaction transaction(db_, path_);
  TrialClaim result;
  if (trial_finished(run_id, trial_index)) {
    result.outcome = TrialClaim::Outcome::finished;
    transaction.commit();
    return result;
  }
  Statement find(db_, path_, R"sql(
      SELECT host, pid, token, heartbeat FROM claims WHERE run_id = ?1 AND trial_index = ?2)sql");
  find.bind_all(run_id, trial_index);
  if (find.step()) {
    ClaimOwner holder{find.text(0), find.int64(1), find.text(2)};
    if (holder.token != owner.token && alive(holder, find.real(3))) {
      result.outcome = TrialClaim::Outcome::owned_elsewhere;
      result.holder = holder;
      transaction.commit();
      return result;
    }
    result.taken_over = holder.token != owner.token;
    if (result.taken_over) result.holder = holder;
  }
  Statement claim(db_, path_, R"sql(
      INSERT OR REPLACE INTO claims (run_id, trial_index, host, pid, token, heartbeat)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6))sql");
  claim.bind_all(run_id, trial_index, owner.host, owner.pid, owner.token, unix_seconds());
  claim.run();
  transaction.commit();
  result.outcome = TrialClaim::Outcome::claimed;
  return result;
}

void ResultStore::renew_claims(const std::string& token) {
  Statement(db_, path_, "UPDATE claims SET heartbeat = ?1 WHERE token = ?2")
      .bind_all(unix_seconds(), token)
      .run();
}

void ResultStore::release_claim(int64_t run_id, int64_t trial_index, const std::string& token) {
  Statement(db_, path_, "DELETE FROM claims WHERE run_id = ?1 AND trial_index = ?2 AND token = ?3")
      .bind_all(run_id, trial_index, token)
      .run();
}

std::vector<RunSummary> ResultStore::summaries(const std::string& experiment) {
  // Newest run first among runs sharing model, method and precision (an edited experiment keeps
  // its old runs under new hashes), so a table that shows one of them shows the current one.
  // A version-2 database opened read-only has no cost columns: its costs read as 0 (unknown).
  const bool has_cost = has_column(db_, path_, "trials", "epochs_trained");
  Statement select(
      db_, path_,
      fmt::format(
          R"sql(
      SELECT e.name, r.model, r.method, r.weight_bits, r.activation_bits, s.trials,
             s.top1_mean, s.top1_std, s.top5_mean, s.top5_std, s.images_per_second_mean, r.id,
             r.config_json, {}
      FROM run_stats s
      JOIN runs r ON r.id = s.run_id
      JOIN experiments e ON e.id = r.experiment_id
      WHERE s.trials > 0 AND (?1 = '' OR e.name = ?1)
      ORDER BY e.name, r.model, r.method, r.weight_bits DESC, r.activation_bits DESC,
               r.id DESC)sql",
          // Trials from before version 3 hold 0, "not recorded": left out of the mean.
          has_cost ? "(SELECT AVG(NULLIF(epochs_trained, 0)) FROM trials t WHERE t.run_id = r.id "
                     "AND t.status = 'finished'), (SELECT AVG(NULLIF(images_seen, 0)) FROM trials "
                     "t WHERE t.run_id = r.id AND t.status = 'finished')"
                   : "0, 0"));
  select.bind(1, experiment);
  std::vector<RunSummary> summaries;
  while (select.step()) {
    RunSummary summary;
    summary.experiment = select.text(0);
    summary.model = select.text(1);
    summary.method = select.text(2);
    summary.weight_bits = static_cast<int>(select.int64(3));
    summary.activation_bits = static_cast<int>(select.int64(4));
    summary.trials = select.int64(5);
    summary.top1_mean = select.real(6);
    summary.top1_std = select.real(7);
    summary.top5_mean = select.real(8);
    summary.top5_std = select.real(9);
    summary.images_per_second = select.real(10);
    summary.run_id = select.int64(11);
    summary.init = init_of(nlohmann::json::parse(select.text(12)));
    summary.epochs_trained = select.real(13);
    summary.images_seen = select.real(14);
    summaries.push_back(std::move(summary));
  }
  return summaries;
}

std::vector<std::string> ResultStore::experiment_names() {
  Statement select(db_, path_, "SELECT name FROM experiments ORDER BY name");
  std::vector<std::string> names;
  while (select.step()) names.push_back(select.text(0));
  return names;
}

void ResultStore::require_experiment(const std::string& experiment) {
  if (experiment.empty()) return;
  const auto names = experiment_names();
  if (std::find(names.begin(), names.end(), experiment) != names.end()) return;
  throw std::invalid_argument(fmt::format("{}: no experiment {} (stored: {})", path_,
                                          excerpt(experiment),
                                          names.empty() ? "none" : join(names)));
}

std::vector<StoredExperiment> ResultStore::experiments() {
  Statement select(db_, path_, "SELECT name, file, spec_json FROM experiments ORDER BY id");
  std::vector<StoredExperiment> experiments;
  while (select.step()) {
    experiments.push_back(
        StoredExperiment{select.text(0), select.text(1), nlohmann::json::parse(select.text(2))});
  }
  return experiments;
}

std::vector<StoredRun> ResultStore::runs(const std::string& experiment) {
  Statement select(db_, path_, R"sql(
      SELECT r.id, e.name, r.hash, r.model, r.quantizer, r.weight_bits, r.activation_bits,
             r.strategies, r.method, r.config_json
      FROM runs r JOIN experiments e ON e.id = r.experiment_id
      WHERE ?1 = '' OR e.name = ?1
      ORDER BY r.id)sql");
  select.bind(1, experiment);
  std::vector<StoredRun> runs;
  while (select.step()) {
    StoredRun run;
    run.id = select.int64(0);
    run.experiment = select.text(1);
    run.record.hash = select.text(2);
    run.record.model = select.text(3);
    run.record.quantizer = select.text(4);
    run.record.weight_bits = static_cast<int>(select.int64(5));
    run.record.activation_bits = static_cast<int>(select.int64(6));
    run.record.strategies = nlohmann::json::parse(select.text(7)).get<std::vector<std::string>>();
    run.record.method = select.text(8);
    run.record.config = nlohmann::json::parse(select.text(9));
    runs.push_back(std::move(run));
  }
  return runs;
}

std::vector<TrialRecord> ResultStore::trials(int64_t run_id) {
  // Read-only databases of older versions lack later columns: they read as "not recorded".
  const bool has_origin_and_cost = has_column(db_, path_, "trials", "started_from");
  const bool has_cpu = has_column(db_, path_, "trials", "cpu");
  Statement select(
      db_, path_,
      fmt::format(R"sql(
      SELECT id, trial_index, seed, status, error, top1, top5, final_loss, wall_seconds,
             images_per_second, device, torch_version, cuda_version, plugin_hashes_json,
             extra_json, {}, {}
      FROM trials WHERE run_id = ?1 ORDER BY trial_index)sql",
                  has_origin_and_cost ? "started_from, epochs_trained, images_seen" : "'', 0, 0",
                  has_cpu ? "cpu" : "'unknown'"));
  select.bind(1, run_id);
  std::vector<TrialRecord> trials;
  while (select.step()) {
    TrialRecord trial;
    trial.trial_index = select.int64(1);
    trial.seed = static_cast<uint64_t>(select.int64(2));
    trial.status = stored_status(path_, trial.trial_index, select.text(3));
    trial.error = select.text(4);
    trial.top1 = select.real(5);
    trial.top5 = select.real(6);
    trial.final_loss = select.real(7);
    trial.wall_seconds = select.real(8);
    trial.images_per_second = select.real(9);
    trial.device = select.text(10);
    trial.torch_version = select.text(11);
    trial.cuda_version = select.text(12);
    trial.plugin_hashes = nlohmann::json::parse(select.text(13));
    trial.extra = metrics_from_json(select.text(14));
    trial.started_from = select.text(15);
    trial.epochs_trained = select.int64(16);
    trial.images_seen = select.int64(17);
    trial.cpu = select.text(18);
    trial.epochs = read_epochs(db_, path_, select.int64(0));
    trials.push_back(std::move(trial));
  }
  return trials;
}

}  // namespace lowbit
