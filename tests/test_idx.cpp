// IDX reading: round trips through plain and gzip files, and every malformed case names the file.
#include <lowbit/data/idx.h>

#include <catch2/catch.hpp>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;

namespace {

// A fresh folder per test, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("lowbit_test_idx_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::vector<uint8_t> idx_bytes(uint8_t type, const std::vector<uint32_t>& dims,
                               const std::vector<uint8_t>& body) {
  std::vector<uint8_t> bytes = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t dim : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back((dim >> shift) & 0xFF);
  }
  bytes.insert(bytes.end(), body.begin(), body.end());
  return bytes;
}

void write_plain(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  REQUIRE(file != nullptr);
  REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) ==
          static_cast<int>(bytes.size()));
  REQUIRE(gzclose(file) == Z_OK);
}

std::vector<uint8_t> counting(size_t n) {
  std::vector<uint8_t> body(n);
  for (size_t i = 0; i < n; ++i) body[i] = static_cast<uint8_t>(i * 7 + 3);
  return body;
}

void check_counting(const torch::Tensor& t, const std::vector<int64_t>& shape) {
  REQUIRE(t.scalar_type() == torch::kUInt8);
  REQUIRE(t.sizes().vec() == shape);
  const auto flat = t.reshape({-1});
  for (int64_t i = 0; i < flat.numel(); ++i) {
    REQUIRE(flat[i].item<int64_t>() == static_cast<uint8_t>(i * 7 + 3));
  }
}

}  // namespace

TEST_CASE("read_idx reads plain and gzip files of any rank", "[data][idx]") {
  TempDir dir;
  const auto bytes3 = idx_bytes(0x08, {2, 3, 4}, counting(24));
  write_plain(dir.file("images-idx3-ubyte"), bytes3);
  write_gzip(dir.file("images-idx3-ubyte.gz"), bytes3);
  check_counting(lowbit::read_idx(dir.file("images-idx3-ubyte")), {2, 3, 4});
  check_counting(lowbit::read_idx(dir.file("images-idx3-ubyte.gz")), {2, 3, 4});

  const auto bytes1 = idx_bytes(0x08, {5}, counting(5));
  write_gzip(dir.file("labels.gz"), bytes1);
  check_counting(lowbit::read_idx(dir.file("labels.gz")), {5});
}

TEST_CASE("read_idx accepts an empty data set", "[data][idx]") {
  TempDir dir;
  write_gzip(dir.file("empty.gz"), idx_bytes(0x08, {0, 28, 28}, {}));
  const auto t = lowbit::read_idx(dir.file("empty.gz"));
  CHECK(t.sizes().vec() == std::vector<int64_t>{0, 28, 28});
}

TEST_CASE("read_idx errors name the file and the fault", "[data][idx]") {
  TempDir dir;
  using Catch::Matchers::Contains;

  SECTION("missing file") {
    const std::string path = dir.file("no-such-file.gz");
    REQUIRE_THROWS_WITH(lowbit::read_idx(path), Contains(path));
  }
  SECTION("truncated body, plain and gzip") {
    auto bytes = idx_bytes(0x08, {2, 3, 4}, counting(20));
    const std::string plain = dir.file("short-idx3-ubyte");
    const std::string gz = dir.file("short-idx3-ubyte.gz");
    write_plain(plain, bytes);
    write_gzip(gz, bytes);
    for (const auto& path : {plain, gz}) {
      REQUIRE_THROWS_WITH(lowbit::read_idx(path),
                          Contains(path) && Contains("truncated") && Contains("24") &&
                              Contains("20"));
    }
  }
  SECTION("truncated header") {
    const std::string path = dir.file("header-only");
    write_plain(path, {0, 0, 0x08, 3, 0, 0});
    REQUIRE_THROWS_WITH(lowbit::read_idx(path), Contains(path));
  }
  SECTION("trailing bytes") {
    const std::string path = dir.file("long.gz");
    write_gzip(path, idx_bytes(0x08, {2, 2}, counting(5)));
    REQUIRE_THROWS_WITH(lowbit::read_idx(path), Contains(path) && Contains("longer"));
  }
  SECTION("bad magic") {
    const std::string path = dir.file("bad-magic");
    auto bytes = idx_bytes(0x08, {4}, counting(4));
    bytes[0] = 0x1F;
    write_plain(path, bytes);
    REQUIRE_THROWS_WITH(lowbit::read_idx(path), Contains(path) && Contains("magic"));
  }
  SECTION("unsupported element type") {
    const std::string path = dir.file("floats.gz");
    write_gzip(path, idx_bytes(0x0D, {1}, counting(4)));
    REQUIRE_THROWS_WITH(lowbit::read_idx(path),
                        Contains(path) && Contains("0x0d") && Contains("0x08"));
  }
  SECTION("header declaring far more data than the file holds") {
    const std::string path = dir.file("huge.gz");
    // About 280 TB: must be reported as truncated, not attempted as an allocation.
    write_gzip(path, idx_bytes(0x08, {0xFFFFFFFFu, 0xFFFFu}, counting(10)));
    REQUIRE_THROWS_WITH(lowbit::read_idx(path), Contains(path) && Contains("truncated"));
    // Beyond what any size type holds.
    write_gzip(path, idx_bytes(0x08, {0xFFFFFFFFu, 0xFFFFFFFFu}, counting(10)));
    REQUIRE_THROWS_WITH(lowbit::read_idx(path), Contains(path) && Contains("overflow"));
  }
}
