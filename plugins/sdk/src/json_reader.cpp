#include <lowbit/sdk/json_reader.h>

#include <fmt/format.h>

#include <utility>
#include <vector>

namespace lowbit {
namespace {

constexpr size_t kExcerptCharacters = 80;

/// A key as one token of a JSON pointer (RFC 6901), so the pointer can be pasted into any tool.
std::string pointer_token(const std::string& key) {
  std::string escaped;
  for (char c : key) {
    if (c == '~')
      escaped += "~0";
    else if (c == '/')
      escaped += "~1";
    else
      escaped += c;
  }
  return escaped;
}

/// Whole UTF-8 characters only: a cut inside one would make the message invalid UTF-8.
std::string cut_utf8(const std::string& text, size_t limit) {
  if (text.size() <= limit) return text;
  size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return fmt::format("{}... ({} characters in all)", text.substr(0, end), text.size());
}

/// Parser events in document order; rejects repeated keys and deep nesting while the document
/// is read, before anything recursive touches it. Errors point at the place (RFC 6901 pointer).
class StrictParseCheck {
 public:
  explicit StrictParseCheck(std::string source) : source_(std::move(source)) {}

  bool operator()(int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    const bool starts_element =
        event == Event::object_start || event == Event::array_start || event == Event::value;
    if (starts_element && !levels_.empty() && !levels_.back().object) ++levels_.back().index;
    if (depth > kMaxJsonDepth) {
      throw ConfigError(
          source_, pointer(), fmt::format("nested deeper than {} levels", kMaxJsonDepth),
          "at most " + std::to_string(kMaxJsonDepth) + " levels of arrays and objects");
    }
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        levels_.emplace_back();
        levels_.back().object = event == Event::object_start;
        break;
      case Event::object_end:
      case Event::array_end:
        levels_.pop_back();
        break;
      case Event::key:
        levels_.back().key = parsed.get<std::string>();
        if (!levels_.back().keys.insert(levels_.back().key).second) {
          throw ConfigError(source_, pointer(), "this key appears twice in one object",
                            "each key once");
        }
        break;
      case Event::value:
        break;
    }
    return true;
  }

 private:
  struct Level {
    bool object = false;
    std::string key;             ///< object: the member being read
    std::set<std::string> keys;  ///< object: every key so far
    int64_t index = -1;          ///< array: the element being read
  };

  std::string pointer() const {
    std::string out;
    for (const auto& level : levels_) {
      if (level.object ? level.keys.empty() : level.index < 0) continue;  // nothing read in it yet
      out += "/" + (level.object ? pointer_token(level.key) : std::to_string(level.index));
    }
    return out;
  }

  std::string source_;
  std::vector<Level> levels_;
};

template <typename Input>
nlohmann::json parse_strictly(Input&& input, const std::string& source) {
  try {
    return nlohmann::json::parse(std::forward<Input>(input), StrictParseCheck(source));
  } catch (const ConfigError&) {
    throw;
  } catch (const nlohmann::json::exception& e) {
    // parse_error and out_of_range (a number such as 1e400) alike.
    throw ConfigError(source, "", fmt::format("not valid JSON: {}", e.what()));
  }
}

}  // namespace

nlohmann::json parse_json(std::istream& in, const std::string& source) {
  return parse_strictly(in, source);
}

nlohmann::json parse_json(const std::string& text, const std::string& source) {
  return parse_strictly(text, source);
}

std::string excerpt(const nlohmann::json& value) {
  return cut_utf8(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  kExcerptCharacters);
}

std::string excerpt(const std::string& text) { return excerpt(nlohmann::json(text)); }

const nlohmann::json JsonReader::empty_object_ = nlohmann::json::object();

std::string join(const std::vector<std::string>& values, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += separator;  // an empty value still takes its place
    out += values[i];
  }
  return out;
}

JsonReader::JsonReader(const nlohmann::json& value, std::string file, std::string pointer)
    : value_(value), file_(std::move(file)), pointer_(std::move(pointer)) {
  if (!value_.is_object()) {
    throw ConfigError(file_, pointer_,
                      fmt::format("expected an object, found {}", excerpt(value_)));
  }
}

std::string JsonReader::pointer_to(const std::string& key) const {
  return pointer_ + "/" + pointer_token(key);
}

void JsonReader::fail(const std::string& key, const std::string& problem,
                      const std::string& allowed) const {
  throw ConfigError(file_, key.empty() ? pointer_ : pointer_to(key), problem, allowed);
}

const nlohmann::json* JsonReader::find(const std::string& key) const {
  known_keys_.insert(key);
  auto it = value_.find(key);
  if (it == value_.end() || it->is_null()) return nullptr;
  return &*it;
}

const nlohmann::json& JsonReader::require(const std::string& key) const {
  const auto* found = find(key);
  if (found == nullptr) fail(key, "required field is missing");
  return *found;
}

bool JsonReader::has(const std::string& key) const {
  return value_.contains(key) && !value_.at(key).is_null();
}

const nlohmann::json& JsonReader::member(const std::string& key) const { return require(key); }

std::string JsonReader::string(const std::string& key) const {
  const auto& value = require(key);
  if (!value.is_string()) fail(key, fmt::format("expected a string, found {}", excerpt(value)));
  return value.get<std::string>();
}

std::string JsonReader::string(const std::string& key, const std::string& fallback) const {
  return find(key) == nullptr ? fallback : string(key);
}

std::string JsonReader::choice(const std::string& key,
                               const std::vector<std::string>& allowed) const {
  std::string value = string(key);
  for (const auto& candidate : allowed) {
    if (candidate == value) return value;
  }
  fail(key, fmt::format("unknown value {}", excerpt(value)), join(allowed));
}

std::string JsonReader::choice(const std::string& key, const std::string& fallback,
                               const std::vector<std::string>& allowed) const {
  return find(key) == nullptr ? fallback : choice(key, allowed);
}

int64_t JsonReader::integer(const std::string& key, int64_t min, int64_t max) const {
  const auto& value = require(key);
  if (!value.is_number_integer()) {
    fail(key, fmt::format("expected an integer, found {}", excerpt(value)),
         fmt::format("integers from {} to {}", min, max));
  }
  auto number = value.get<int64_t>();
  if (number < min || number > max) {
    fail(key, fmt::format("{} is out of range", number), fmt::format("{} to {}", min, max));
  }
  return number;
}

int64_t JsonReader::integer(const std::string& key, int64_t fallback, int64_t min,
                            int64_t max) const {
  return find(key) == nullptr ? fallback : integer(key, min, max);
}

double JsonReader::number(const std::string& key, double min, double max) const {
  const auto& value = require(key);
  if (!value.is_number()) {
    fail(key, fmt::format("expected a number, found {}", excerpt(value)),
         fmt::format("numbers from {} to {}", min, max));
  }
  auto number = value.get<double>();
  if (!(number >= min && number <= max)) {
    fail(key, fmt::format("{} is out of range", number), fmt::format("{} to {}", min, max));
  }
  return number;
}

double JsonReader::number(const std::string& key, double fallback, double min, double max) const {
  return find(key) == nullptr ? fallback : number(key, min, max);
}

bool JsonReader::boolean(const std::string& key, bool fallback) const {
  const auto* value = find(key);
  if (value == nullptr) return fallback;
  if (!value->is_boolean())
    fail(key, fmt::format("expected true or false, found {}", excerpt(*value)));
  return value->get<bool>();
}

std::vector<int64_t> JsonReader::integers(const std::string& key,
                                          const std::vector<int64_t>& fallback, int64_t min,
                                          int64_t max) const {
  const auto* value = find(key);
  if (value == nullptr) return fallback;
  if (!value->is_array())
    fail(key, fmt::format("expected an array of integers, found {}", excerpt(*value)));
  std::vector<int64_t> out;
  for (size_t i = 0; i < value->size(); ++i) {
    const auto& item = (*value)[i];
    std::string where = pointer_to(key) + "/" + std::to_string(i);
    if (!item.is_number_integer()) {
      throw ConfigError(file_, where, fmt::format("expected an integer, found {}", excerpt(item)));
    }
    auto number = item.get<int64_t>();
    if (number < min || number > max) {
      throw ConfigError(file_, where, fmt::format("{} is out of range", number),
                        fmt::format("{} to {}", min, max));
    }
    out.push_back(number);
  }
  return out;
}

JsonReader JsonReader::object(const std::string& key) const {
  const auto* value = find(key);
  if (value == nullptr) return JsonReader(empty_object_, file_, pointer_to(key));
  if (!value->is_object()) fail(key, fmt::format("expected an object, found {}", excerpt(*value)));
  return JsonReader(*value, file_, pointer_to(key));
}

void JsonReader::reject_unknown_keys() const {
  for (const auto& item : value_.items()) {
    if (known_keys_.count(item.key()) == 0) {
      std::vector<std::string> allowed(known_keys_.begin(), known_keys_.end());
      fail(item.key(), "unknown field", allowed.empty() ? "no fields" : join(allowed));
    }
  }
}

}  // namespace lowbit
