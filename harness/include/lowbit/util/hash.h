#pragma once
// Content hashes that identify runs (resolved configuration) and plugin builds (file bytes).

#include <string>

namespace lowbit {

/// Lower-case hex SHA-1 of `bytes`.
std::string sha1_hex(const std::string& bytes);
/// Lower-case hex SHA-1 of a file's content; throws std::runtime_error naming the file.
std::string sha1_file(const std::string& path);

}  // namespace lowbit
