// Fashion-MNIST loading: the real files when installed, and a tiny fake root either way.
#include <lowbit/data/dataset.h>
#include <lowbit/data/fashion_mnist.h>

#include "test_support.h"

#include <catch2/catch.hpp>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

namespace fs = std::filesystem;

namespace {

const char* const kDebianRoot = "/usr/share/datasets/fashion-mnist";

void write_idx(const std::string& path, const std::vector<uint32_t>& dims,
               const std::vector<uint8_t>& body, bool gzip = true) {
  lowbit::testing::write_bytes(path, lowbit::testing::idx_bytes(0x08, dims, body), gzip);
}

// Image i is filled with the value fill(i); labels are given.
void write_split(const lowbit::testing::TemporaryFolder& dir, const std::string& prefix,
                 const std::vector<uint8_t>& fills, const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> pixels;
  for (uint8_t fill : fills) pixels.insert(pixels.end(), 28 * 28, fill);
  write_idx(dir.file(prefix + "-images-idx3-ubyte.gz"),
            {static_cast<uint32_t>(fills.size()), 28, 28}, pixels);
  write_idx(dir.file(prefix + "-labels-idx1-ubyte.gz"), {static_cast<uint32_t>(labels.size())},
            labels);
}

}  // namespace

TEST_CASE("Fashion-MNIST from the installed data set", "[data][fashion-mnist]") {
  if (!fs::is_directory(kDebianRoot)) {
    LOWBIT_SKIP(kDebianRoot << " is absent (apt install dataset-fashion-mnist)");
  }
  const lowbit::DataSplits splits = lowbit::load_fashion_mnist(kDebianRoot);
  CHECK(splits.name == "fashion-mnist");
  CHECK(splits.num_classes == 10);
  CHECK(splits.channels == 1);
  CHECK(splits.image_size == 28);
  REQUIRE(splits.train.images.sizes().vec() == std::vector<int64_t>{60000, 1, 28, 28});
  REQUIRE(splits.test.images.sizes().vec() == std::vector<int64_t>{10000, 1, 28, 28});
  REQUIRE(splits.train.labels.sizes().vec() == std::vector<int64_t>{60000});
  REQUIRE(splits.test.labels.sizes().vec() == std::vector<int64_t>{10000});
  CHECK(splits.train.images.scalar_type() == torch::kFloat32);
  CHECK(splits.train.labels.scalar_type() == torch::kInt64);

  CHECK(splits.train.labels.min().item<int64_t>() == 0);
  CHECK(splits.train.labels.max().item<int64_t>() == 9);
  CHECK(splits.test.labels.max().item<int64_t>() == 9);
  // Fashion-MNIST is exactly balanced: 6000 training and 1000 test images per class.
  CHECK(torch::bincount(splits.train.labels).eq(6000).all().item<bool>());
  CHECK(torch::bincount(splits.test.labels).eq(1000).all().item<bool>());
  // Both splits start with an ankle boot (class 9).
  CHECK(splits.train.labels[0].item<int64_t>() == 9);
  CHECK(splits.test.labels[0].item<int64_t>() == 9);

  CHECK(splits.train.images.mean().item<double>() == Approx(0.0).margin(1e-4));
  CHECK(splits.train.images.std().item<double>() == Approx(1.0).epsilon(1e-4));
  // The test set uses the training statistics, so it is close to, not exactly, standardised.
  CHECK(splits.test.images.mean().item<double>() == Approx(0.0).margin(0.05));
  // Black background pixels: 0 scaled by the known mean 0.2860 and std 0.3530.
  CHECK(splits.train.images.min().item<double>() == Approx(-0.2860 / 0.3530).epsilon(1e-2));
}

TEST_CASE("Fashion-MNIST from a fake root with tiny files", "[data][fashion-mnist]") {
  lowbit::testing::TemporaryFolder dir;
  write_split(dir, "train", {0, 255, 0, 255}, {9, 0, 3, 3});
  // All-white test images: only the training statistics give them a finite, non-zero value.
  write_split(dir, "t10k", {255, 255}, {1, 2});

  const lowbit::DataSplits splits = lowbit::load_fashion_mnist(dir.path());
  REQUIRE(splits.train.images.sizes().vec() == std::vector<int64_t>{4, 1, 28, 28});
  REQUIRE(splits.test.images.sizes().vec() == std::vector<int64_t>{2, 1, 28, 28});
  CHECK(splits.train.labels.equal(torch::tensor({9, 0, 3, 3}, torch::kInt64)));
  CHECK(splits.test.labels.equal(torch::tensor({1, 2}, torch::kInt64)));

  // Training pixels are half 0, half 1: mean 0.5 and (unbiased) std just over 0.5.
  const double n = 4 * 28 * 28;
  const double std = 0.5 * std::sqrt(n / (n - 1));
  CHECK(splits.train.images[0].max().item<double>() == Approx(-0.5 / std));
  CHECK(splits.train.images[1].min().item<double>() == Approx(0.5 / std));
  CHECK(splits.test.images.min().item<double>() == Approx(0.5 / std));
  CHECK(splits.test.images.max().item<double>() == Approx(0.5 / std));

  SECTION("through load_dataset, with limits") {
    lowbit::DataOptions options;
    options.root = dir.path();
    options.limit = 3;
    options.test_limit = 1;
    const lowbit::DataSplits limited = lowbit::load_dataset(options);
    CHECK(limited.train.size() == 3);
    CHECK(limited.test.size() == 1);
    CHECK(limited.train.labels.equal(torch::tensor({9, 0, 3}, torch::kInt64)));
  }
}

TEST_CASE("pad surrounds Fashion-MNIST images with the normalised black", "[data][fashion-mnist]") {
  lowbit::testing::TemporaryFolder dir;
  write_split(dir, "train", {0, 255, 0, 255}, {9, 0, 3, 3});
  write_split(dir, "t10k", {255, 128}, {1, 2});
  lowbit::DataOptions options;
  options.root = dir.path();
  options.limit = 3;
  const lowbit::DataSplits plain = lowbit::load_dataset(options);
  options.pad = 2;
  const lowbit::DataSplits padded = lowbit::load_dataset(options);

  CHECK(padded.image_size == 32);
  REQUIRE(padded.train.images.sizes().vec() == std::vector<int64_t>{3, 1, 32, 32});
  REQUIRE(padded.test.images.sizes().vec() == std::vector<int64_t>{2, 1, 32, 32});
  CHECK(padded.train.labels.equal(plain.train.labels));
  // Training image 0 is all black: its pixels are the value a black pixel has once normalised.
  const float black = plain.train.images[0][0][0][0].item<float>();
  CHECK(black == Approx(-1.0).margin(0.01));  // mean 0.5 over std just over 0.5
  CHECK(padded.black.item<float>() == black);
  // Borders black, bit for bit; centres the unpadded images, bit for bit (the statistics are the
  // unpadded images', so padding changes no pixel).
  for (const auto& [unpadded, images] : {std::pair{plain.train.images, padded.train.images},
                                         std::pair{plain.test.images, padded.test.images}}) {
    auto expected = torch::full({unpadded.size(0), 1, 32, 32}, black);
    expected.narrow(2, 2, 28).narrow(3, 2, 28).copy_(unpadded);
    CHECK(images.equal(expected));
  }
  CHECK(padded.test.images[1][0][0][31].item<float>() == black);
  CHECK(padded.test.images[1][0][16][16].item<float>() ==
        plain.test.images[1][0][14][14].item<float>());
}

TEST_CASE("Fashion-MNIST errors name the file at fault", "[data][fashion-mnist]") {
  lowbit::testing::TemporaryFolder dir;
  using Catch::Matchers::Contains;
  write_split(dir, "train", {0, 255}, {1, 2});
  write_split(dir, "t10k", {0, 255}, {1, 2});

  SECTION("missing label file") {
    fs::remove(dir.file("t10k-labels-idx1-ubyte.gz"));
    REQUIRE_THROWS_WITH(lowbit::load_fashion_mnist(dir.path()), Contains("t10k-labels-idx1-ubyte"));
  }
  SECTION("label out of range") {
    write_idx(dir.file("train-labels-idx1-ubyte.gz"), {2}, {1, 10});
    REQUIRE_THROWS_WITH(lowbit::load_fashion_mnist(dir.path()),
                        Contains("train-labels-idx1-ubyte.gz") && Contains("10"));
  }
  SECTION("image and label counts disagree") {
    write_idx(dir.file("t10k-labels-idx1-ubyte.gz"), {3}, {1, 2, 3});
    REQUIRE_THROWS_WITH(
        lowbit::load_fashion_mnist(dir.path()),
        Contains("t10k-images-idx3-ubyte.gz") && Contains("t10k-labels-idx1-ubyte.gz"));
  }
  SECTION("images of the wrong size") {
    write_idx(dir.file("train-images-idx3-ubyte.gz"), {2, 4, 4}, std::vector<uint8_t>(32));
    REQUIRE_THROWS_WITH(lowbit::load_fashion_mnist(dir.path()),
                        Contains("train-images-idx3-ubyte.gz"));
  }
  SECTION("unpacked files work too") {
    fs::remove(dir.file("train-images-idx3-ubyte.gz"));
    fs::remove(dir.file("train-labels-idx1-ubyte.gz"));
    write_idx(dir.file("train-images-idx3-ubyte"), {2, 28, 28}, std::vector<uint8_t>(2 * 784),
              /*gzip=*/false);
    write_idx(dir.file("train-labels-idx1-ubyte"), {2}, {4, 5}, /*gzip=*/false);
    REQUIRE(fs::file_size(dir.file("train-labels-idx1-ubyte")) == 8 + 2);
    CHECK(lowbit::load_fashion_mnist(dir.path()).train.size() == 2);
  }
}

TEST_CASE("load_dataset rejects unknown names and negative limits", "[data]") {
  using Catch::Matchers::Contains;
  lowbit::DataOptions options;
  options.name = "imagenet";
  REQUIRE_THROWS_AS(lowbit::load_dataset(options), std::invalid_argument);
  REQUIRE_THROWS_WITH(lowbit::load_dataset(options),
                      Contains("imagenet") && Contains("fashion-mnist") && Contains("synthetic"));
  options.name = "synthetic";
  options.limit = -1;
  REQUIRE_THROWS_WITH(lowbit::load_dataset(options), Contains("limit"));
  options.limit = 0;
  for (int64_t pad : {-1, 65}) {
    options.pad = pad;
    REQUIRE_THROWS_WITH(lowbit::load_dataset(options), Contains("pad") && Contains("0..64"));
  }
  // Streamed images are cropped as they are decoded: refused before anything is read.
  options.name = "imagefolder";
  options.root = "/nonexistent";
  options.pad = 2;
  REQUIRE_THROWS_WITH(lowbit::load_dataset(options), Contains("pad") && Contains("imagefolder"));
}
