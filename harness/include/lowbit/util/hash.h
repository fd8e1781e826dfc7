#pragma once
// Content hashes that identify runs (resolved configuration) and plugin builds (file bytes), and
// random ids for what has no content to hash (a database, a sweep's claims).

#include <cstddef>
#include <string>

namespace lowbit {

/// Lower-case hex SHA-1 of `bytes`.
std::string sha1_hex(const std::string& bytes);
/// Lower-case hex SHA-1 of a file's content; throws std::runtime_error naming the file.
std::string sha1_file(const std::string& path);
/// `bytes` random bytes from the system's entropy source, as lower-case hex.
std::string random_hex(size_t bytes);

}  // namespace lowbit
