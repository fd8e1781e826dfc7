#pragma once
// The one line of an exception that a person (or a database row) should see.

#include <exception>
#include <string>

namespace lowbit {

/// `e.what()`, except that a LibTorch error loses its C++ stack trace and keeps its first line:
/// the frames say nothing to a user, and they would fill the trial's error column.
std::string exception_message(const std::exception& e);

}  // namespace lowbit
