#include <lowbit/util/hash.h>

#include <boost/uuid/detail/sha1.hpp>
#include <fmt/format.h>

#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace lowbit {

std::string sha1_hex(const std::string& bytes) {
  boost::uuids::detail::sha1 sha;
  sha.process_bytes(bytes.data(), bytes.size());
  boost::uuids::detail::sha1::digest_type digest;
  sha.get_digest(digest);
  std::string hex;
  for (auto word : digest) hex += fmt::format("{:08x}", word);
  return hex;
}

std::string sha1_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot read file to hash it", path));
  std::ostringstream content;
  content << in.rdbuf();
  return sha1_hex(content.str());
}

std::string random_hex(size_t bytes) {
  std::random_device device;
  std::string out;
  for (size_t i = 0; i < bytes; ++i) out += fmt::format("{:02x}", device() & 0xFF);
  return out;
}

}  // namespace lowbit
