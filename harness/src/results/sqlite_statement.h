#pragma once
// Thin RAII pieces over the SQLite C API: a prepared statement and an immediate transaction.
// Every failure throws std::runtime_error naming the database file and SQLite's own message.

#include <sqlite3.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace lowbit::sqlite {

/// Throws std::runtime_error "results database <path>: <what>: <sqlite3_errmsg>".
[[noreturn]] inline void throw_error(sqlite3* db, const std::string& path, std::string_view what) {
  std::string message = "results database " + path + ": " + std::string(what);
  if (db != nullptr) message += std::string(": ") + sqlite3_errmsg(db);
  throw std::runtime_error(message);
}

/// One prepared statement. Values are always bound, never formatted into the SQL text.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& path, std::string_view sql) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
        SQLITE_OK) {
      throw_error(db_, path_, "cannot prepare \"" + std::string(sql) + "\"");
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, int64_t value) {
    return check_bind(sqlite3_bind_int64(stmt_, index, value));
  }
  Statement& bind(int index, int value) { return bind(index, static_cast<int64_t>(value)); }
  Statement& bind(int index, double value) {
    return check_bind(sqlite3_bind_double(stmt_, index, value));
  }
  Statement& bind(int index, const std::string& value) {
    return check_bind(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                                        SQLITE_TRANSIENT));
  }
  Statement& bind(int index, const char* value) { return bind(index, std::string(value)); }

  /// Binds the arguments to parameters 1, 2, ... in order.
  template <typename... Values>
  Statement& bind_all(const Values&... values) {
    int index = 0;
    (bind(++index, values), ...);
    return *this;
  }

  /// Advances to the next row; false once the statement is done.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw_error(db_, path_, "cannot execute \"" + std::string(sqlite3_sql(stmt_)) + "\"");
  }
  /// Runs a statement that returns no rows we need.
  void run() {
    while (step()) {
    }
  }
  /// Makes the statement ready for the next set of bindings (a loop of inserts).
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  int64_t int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  double real(int column) const { return sqlite3_column_double(stmt_, column); }
  std::string text(int column) const {
    const auto* chars = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    if (chars == nullptr) return {};
    return std::string(chars, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
  }

 private:
  Statement& check_bind(int rc) {
    if (rc != SQLITE_OK) throw_error(db_, path_, "cannot bind a parameter");
    return *this;
  }

  sqlite3* db_;
  const std::string& path_;  // owned by the store, which outlives its statements
  sqlite3_stmt* stmt_ = nullptr;
};

/// BEGIN IMMEDIATE ... COMMIT; rolls back unless commit() was reached. IMMEDIATE takes the write
/// lock up front, so two processes never both read-then-write and deadlock on the upgrade.
class Transaction {
 public:
  Transaction(sqlite3* db, const std::string& path) : db_(db), path_(path) {
    Statement(db_, path_, "BEGIN IMMEDIATE").run();
  }
  ~Transaction() {
    // Errors are swallowed: we are either unwinding already or the commit went through.
    if (!committed_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void commit() {
    Statement(db_, path_, "COMMIT").run();
    committed_ = true;
  }

 private:
  sqlite3* db_;
  const std::string& path_;
  bool committed_ = false;
};

}  // namespace lowbit::sqlite
