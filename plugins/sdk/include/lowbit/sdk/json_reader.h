#pragma once
// Validated reading of a JSON object: every field is typed and range-checked, and fields nobody
// asked for are errors, so a typo in an experiment file never silently falls back to a default.

#include <lowbit/sdk/error.h>

#include <nlohmann/json.hpp>

#include <istream>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace lowbit {

class JsonReader {
 public:
  /// `value` must outlive the reader. `file` and `pointer` locate it for error messages.
  JsonReader(const nlohmann::json& value, std::string file, std::string pointer = "");

  const std::string& file() const { return file_; }
  const std::string& pointer() const { return pointer_; }
  /// JSON pointer of a member of this object.
  std::string pointer_to(const std::string& key) const;
  const nlohmann::json& json() const { return value_; }

  bool has(const std::string& key) const;

  std::string string(const std::string& key) const;
  std::string string(const std::string& key, const std::string& fallback) const;
  /// A string restricted to `allowed`; the error lists them.
  std::string choice(const std::string& key, const std::vector<std::string>& allowed) const;
  std::string choice(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& allowed) const;
  /// A string restricted to the names in `choices`, returned as the value it maps to (an enum, a
  /// flag); absent, `fallback`, which must be one of the values. The error lists the names.
  template <typename T>
  T mapped_choice(const std::string& key, const T& fallback,
                  const std::vector<std::pair<std::string, T>>& choices) const;
  int64_t integer(const std::string& key, int64_t min, int64_t max) const;
  int64_t integer(const std::string& key, int64_t fallback, int64_t min, int64_t max) const;
  double number(const std::string& key, double min, double max) const;
  double number(const std::string& key, double fallback, double min, double max) const;
  bool boolean(const std::string& key, bool fallback) const;
  std::vector<int64_t> integers(const std::string& key, const std::vector<int64_t>& fallback,
                                int64_t min, int64_t max) const;

  /// A nested object; an absent key reads as an empty object.
  JsonReader object(const std::string& key) const;
  /// The raw member (marked as read); throws if absent.
  const nlohmann::json& member(const std::string& key) const;

  /// Throws for the first key that no accessor read, listing the keys this object accepts.
  void reject_unknown_keys() const;

  [[noreturn]] void fail(const std::string& key, const std::string& problem,
                         const std::string& allowed = "") const;

 private:
  const nlohmann::json* find(const std::string& key) const;
  const nlohmann::json& require(const std::string& key) const;

  const nlohmann::json& value_;
  std::string file_;
  std::string pointer_;
  mutable std::set<std::string> known_keys_;
  static const nlohmann::json empty_object_;
};

template <typename T>
T JsonReader::mapped_choice(const std::string& key, const T& fallback,
                            const std::vector<std::pair<std::string, T>>& choices) const {
  std::vector<std::string> names;
  std::string fallback_name;
  for (const auto& [name, value] : choices) {
    names.push_back(name);
    if (fallback_name.empty() && value == fallback) fallback_name = name;
  }
  const auto picked = choice(key, fallback_name, names);
  for (const auto& [name, value] : choices) {
    if (name == picked) return value;
  }
  return fallback;  // not reached: choice() accepts only the names above
}

/// Deepest nesting of arrays and objects parse_json accepts; experiment files need about six
/// levels, and a bound keeps a hostile file from exhausting the stack of recursive copies.
constexpr int kMaxJsonDepth = 64;

/// Parses a JSON document strictly: a key given twice in one object is an error (nlohmann would
/// keep the last silently), nesting deeper than kMaxJsonDepth is an error, and so is a number
/// outside double's range. Every error is a ConfigError naming `source`.
nlohmann::json parse_json(std::istream& in, const std::string& source);
nlohmann::json parse_json(const std::string& text, const std::string& source);

/// A value as it goes into a message: its JSON text, cut to about 80 characters (a wrong-typed
/// 50 MB value is not echoed in full).
std::string excerpt(const nlohmann::json& value);
/// The same for a string, quoted as JSON.
std::string excerpt(const std::string& text);

/// Joins values as "a, b, c" for "allowed:" lists.
std::string join(const std::vector<std::string>& values, const std::string& separator = ", ");

}  // namespace lowbit
