// IDX reading: round trips through plain and gzip files, and every malformed case names the file.
#include <lowbit/data/idx.h>

#include "test_support.h"

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

void write_plain(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
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
  lowbit::testing::TemporaryFolder dir;
  const auto bytes3 = lowbit::testing::idx_bytes(0x08, {2, 3, 4}, counting(24));
  write_plain(dir.file("images-idx3-ubyte"), bytes3);
  lowbit::testing::write_bytes(dir.file("images-idx3-ubyte.gz"), bytes3);
  check_counting(lowbit::read_idx(dir.file("images-idx3-ubyte")), {2, 3, 4});
  check_counting(lowbit::read_idx(dir.file("images-idx3-ubyte.gz")), {2, 3, 4});

  const auto bytes1 = lowbit::testing::idx_bytes(0x08, {5}, counting(5));
  lowbit::testing::write_bytes(dir.file("labels.gz"), bytes1);
  check_counting(lowbit::read_idx(dir.file("labels.gz")), {5});
}

TEST_CASE("read_idx accepts an empty data set", "[data][idx]") {
  lowbit::testing::TemporaryFolder dir;
  lowbit::testing::write_bytes(dir.file("empty.gz"),
                               lowbit::testing::idx_bytes(0x08, {0, 28, 28}, {}));
  const auto t = lowbit::read_idx(dir.file("empty.gz"));
  CHECK(t.sizes().vec() == std::vector<int64_t>{0, 28, 28});
}

TEST_CASE("read_idx errors name the file and the fault", "[data][idx]") {
  lowbit::testing::TemporaryFolder dir;
  using Catch::Matchers::Contains;

  SECTION("missing file") {
    const std::string path = dir.file("no-such-file.gz");
    REQUIRE_THROWS_WITH(lowbit::read_idx(path), Contains(path));
  }
  SECTION("truncated body, plain and gzip") {
    auto bytes = lowbit::testing::idx_bytes(0x08, {2, 3, 4}, counting(20));
    const std::string plain = dir.file("short-idx3-ubyte");
    const std::string gz = dir.file("short-idx3-ubyte.gz");
    write_plain(plain, bytes);
    lowbit::testing::write_bytes(gz, bytes);
    for (const auto& path : {plain, gz}) {
      REQUIRE_THROWS_WITH(lowbit::read_idx(path), Contains(path) && Contains("truncated") &&
                                                      Contains("24") && Contains("20"));
    }
  }
  SECTION("truncated header") {
    const std::string path = dir.file("header-only");
    write_plain(path, {0, 0, 0x08, 3, 0, 0});
    REQUIRE_THROWS_WITH(lowbit::read_idx(path), Contains(path));
  }
  SECTION("trailing bytes") {
    const std::string path = dir.file("long.gz");
    lowbit::testing::write_bytes(path, lowbit::testing::idx_bytes(0x08, {2, 2}, counting(5)));
    REQUIRE_THROWS_WITH(lowbit::read_idx(path), Contains(path) && Contains("longer"));
  }
  SECTION("bad magic") {
    const std::string path = dir.file("bad-magic");
    auto bytes = lowbit::testing::idx_bytes(0x08, {4}, counting(4));
    bytes[0] = 0x1F;
    write_plain(path, bytes);
    REQUIRE_THROWS_WITH(lowbit::read_idx(path), Contains(path) && Contains("magic"));
  }
  SECTION("unsupported element type") {
    const std::string path = dir.file("floats.gz");
    lowbit::testing::write_bytes(path, lowbit::testing::idx_bytes(0x0D, {1}, counting(4)));
    REQUIRE_THROWS_WITH(lowbit::read_idx(path),
                        Contains(path) && Contains("0x0d") && Contains("0x08"));
  }
  SECTION("header declaring far more data than the file holds") {
    const std::string path = dir.file("huge.gz");
    // About 280 TB: must be reported as truncated, not attempted as an allocation.
    lowbit::testing::write_bytes(
        path, lowbit::testing::idx_bytes(0x08, {0xFFFFFFFFu, 0xFFFFu}, counting(10)));
    REQUIRE_THROWS_WITH(lowbit::read_idx(path), Contains(path) && Contains("truncated"));
    // Beyond what any size type holds.
    lowbit::testing::write_bytes(
        path, lowbit::testing::idx_bytes(0x08, {0xFFFFFFFFu, 0xFFFFFFFFu}, counting(10)));
    REQUIRE_THROWS_WITH(lowbit::read_idx(path), Contains(path) && Contains("overflow"));
  }
}
