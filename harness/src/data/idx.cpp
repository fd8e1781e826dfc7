#include <lowbit/data/idx.h>

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

namespace lowbit {
namespace {

constexpr uint8_t kUnsignedByte = 0x08;

// Closes the gzFile on every exit path, including the throwing ones.
struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

GzFile open_gz(const std::string& path) {
  // zlib reads files without a gzip header verbatim, so one code path serves .gz and plain files.
  errno = 0;
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    const char* reason = errno != 0 ? std::strerror(errno) : "cannot open";
    throw std::runtime_error(fmt::format("IDX file {}: {}", path, reason));
  }
  gzbuffer(file, 1 << 17);  // the default 8 KiB buffer makes big files needlessly slow
  return GzFile(file);
}

// Reads up to `count` bytes; fewer only at the end of the file.
size_t read_some(gzFile file, const std::string& path, uint8_t* out, size_t count) {
  size_t done = 0;
  while (done < count) {
    // gzread takes an unsigned length; stay well under its limit.
    const auto chunk = static_cast<unsigned>(std::min<size_t>(count - done, 1u << 30));
    const int got = gzread(file, out + done, chunk);
    if (got < 0) {
      int code = 0;
      throw std::runtime_error(
          fmt::format("IDX file {}: read error: {}", path, gzerror(file, &code)));
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

const char* type_name(uint8_t type) {
  switch (type) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "not an IDX type";
  }
}

std::vector<int64_t> read_header(gzFile file, const std::string& path) {
  std::array<uint8_t, 4> magic{};
  if (read_some(file, path, magic.data(), magic.size()) != magic.size()) {
    throw std::runtime_error(
        fmt::format("IDX file {}: shorter than the 4-byte magic number", path));
  }
  if (magic[0] != 0 || magic[1] != 0 || magic[3] == 0) {
    throw std::runtime_error(fmt::format(
        "IDX file {}: bad magic number {:02x} {:02x} {:02x} {:02x} (expected 00 00 <type> <ndim>, "
        "ndim >= 1)",
        path, magic[0], magic[1], magic[2], magic[3]));
  }
  if (magic[2] != kUnsignedByte) {
    throw std::runtime_error(fmt::format(
        "IDX file {}: element type 0x{:02x} ({}) is not supported (allowed: 0x08 unsigned byte)",
        path, magic[2], type_name(magic[2])));
  }
  const size_t ndim = magic[3];
  std::vector<uint8_t> raw(4 * ndim);
  if (read_some(file, path, raw.data(), raw.size()) != raw.size()) {
    throw std::runtime_error(
        fmt::format("IDX file {}: header ends before its {} dimension sizes", path, ndim));
  }
  std::vector<int64_t> dims(ndim);
  for (size_t d = 0; d < ndim; ++d) {
    // Sizes are big-endian uint32.
    const uint8_t* b = &raw[4 * d];
    dims[d] = (int64_t{b[0]} << 24) | (int64_t{b[1]} << 16) | (int64_t{b[2]} << 8) | int64_t{b[3]};
  }
  return dims;
}

// Element count, or an error when a corrupt header declares more than we could address.
size_t element_count(const std::vector<int64_t>& dims, const std::string& path) {
  size_t count = 1;
  for (int64_t dim : dims) {
    if (dim != 0 && count > std::numeric_limits<int64_t>::max() / static_cast<size_t>(dim)) {
      throw std::runtime_error(fmt::format("IDX file {}: dimensions overflow", path));
    }
    count *= static_cast<size_t>(dim);
  }
  return count;
}

}  // namespace

torch::Tensor read_idx(const std::string& path) {
  GzFile file = open_gz(path);
  const std::vector<int64_t> dims = read_header(file.get(), path);
  const size_t expected = element_count(dims, path);

  // Grow the buffer as data arrives rather than trusting the header's size up front: a corrupt
  // header can declare terabytes, which should read as "truncated", not fail an allocation.
  std::vector<uint8_t> body;
  constexpr size_t kChunk = size_t{1} << 24;
  while (body.size() < expected) {
    const size_t want = std::min(kChunk, expected - body.size());
    const size_t old_size = body.size();
    body.resize(old_size + want);
    const size_t got = read_some(file.get(), path, body.data() + old_size, want);
    body.resize(old_size + got);
    if (got < want) break;
  }
  if (body.size() < expected) {
    throw std::runtime_error(
        fmt::format("IDX file {}: truncated: header declares {} bytes of data, found {}", path,
                    expected, body.size()));
  }
  // Trailing bytes mean the header and the data disagree: better to refuse than to guess.
  uint8_t extra = 0;
  if (read_some(file.get(), path, &extra, 1) != 0) {
    throw std::runtime_error(
        fmt::format("IDX file {}: longer than its header declares ({} bytes of data expected)",
                    path, expected));
  }
  auto tensor = torch::empty(dims, torch::kUInt8);
  if (expected > 0) std::memcpy(tensor.data_ptr<uint8_t>(), body.data(), expected);
  return tensor;
}

}  // namespace lowbit
