#pragma once
// Enums whose values have names in experiment files, the database or progress lines: one table
// per enum gives both directions, so a value cannot be spelled two ways, and a parse error lists
// exactly the names the table has.

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lowbit {

/// Every value of an enum with its name, in the order messages list them.
template <typename Enum>
using NameTable = std::vector<std::pair<std::string, Enum>>;

/// The name of `value`; `names` must list every value of the enum.
template <typename Enum>
std::string name_of(const NameTable<Enum>& names, Enum value) {
  for (const auto& [name, candidate] : names) {
    if (candidate == value) return name;
  }
  throw std::logic_error("an enum value missing from its name table");
}

/// The value called `name`; otherwise throws std::invalid_argument
/// `unknown <what> "<name>" (allowed: a, b, c)`.
template <typename Enum>
Enum value_named(const NameTable<Enum>& names, const std::string& name, const std::string& what) {
  std::string allowed;
  for (const auto& [candidate, value] : names) {
    if (candidate == name) return value;
    allowed += (allowed.empty() ? "" : ", ") + candidate;
  }
  throw std::invalid_argument("unknown " + what + " \"" + name + "\" (allowed: " + allowed + ")");
}

}  // namespace lowbit
