// Batch augmentation: crops are shifted windows of the padded image, flips mirror, seeds repeat.
#include <lowbit/data/augment.h>
#include <lowbit/sdk/testing/skip.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <set>
#include <utility>

namespace {

// Every pixel distinct and non-zero, so a window identifies its offset and padding is visible.
torch::Tensor distinct_images(int64_t n, int64_t channels, int64_t height, int64_t width) {
  return torch::arange(1, 1 + n * channels * height * width, torch::kFloat)
      .view({n, channels, height, width});
}

// The (dy, dx) window of the padded image that `out` equals, or (-1, -1).
std::pair<int64_t, int64_t> find_window(const torch::Tensor& image, const torch::Tensor& out,
                                        int64_t pad) {
  const auto padded = torch::constant_pad_nd(image, {pad, pad, pad, pad}, 0);
  const int64_t height = image.size(1), width = image.size(2);
  for (int64_t dy = 0; dy <= 2 * pad; ++dy) {
    for (int64_t dx = 0; dx <= 2 * pad; ++dx) {
      if (padded.narrow(1, dy, height).narrow(2, dx, width).equal(out)) return {dy, dx};
    }
  }
  return {-1, -1};
}

}  // namespace

TEST_CASE("augment_batch keeps the shape", "[data][augment]") {
  const auto images = distinct_images(8, 3, 6, 5);
  lowbit::AugmentOptions options;
  options.crop_padding = 2;
  options.horizontal_flip = true;
  const auto out = lowbit::augment_batch(images, options);
  CHECK(out.sizes() == images.sizes());
  CHECK(out.scalar_type() == images.scalar_type());
}

TEST_CASE("augment_batch with nothing enabled is the identity", "[data][augment]") {
  const auto images = distinct_images(4, 1, 5, 5);
  CHECK(lowbit::augment_batch(images, lowbit::AugmentOptions{}).equal(images));
}

TEST_CASE("random crops are shifted windows of the zero-padded image", "[data][augment]") {
  torch::manual_seed(11);
  const int64_t pad = 2;
  const auto images = distinct_images(64, 2, 6, 7);
  lowbit::AugmentOptions options;
  options.crop_padding = pad;
  const auto out = lowbit::augment_batch(images, options);

  // Checked exactly by hand for one image, so the search below cannot hide a shared bug.
  const auto [dy0, dx0] = find_window(images[0], out[0], pad);
  REQUIRE(dy0 >= 0);
  for (int64_t y = 0; y < 6; ++y) {
    for (int64_t x = 0; x < 7; ++x) {
      const int64_t sy = y + dy0 - pad, sx = x + dx0 - pad;
      const bool inside = sy >= 0 && sy < 6 && sx >= 0 && sx < 7;
      const float expected = inside ? images[0][1][sy][sx].item<float>() : 0.0f;
      REQUIRE(out[0][1][y][x].item<float>() == expected);
    }
  }

  std::set<std::pair<int64_t, int64_t>> offsets;
  for (int64_t i = 0; i < images.size(0); ++i) {
    const auto offset = find_window(images[i], out[i], pad);
    INFO("image " << i);
    REQUIRE(offset.first >= 0);
    offsets.insert(offset);
  }
  // Each image draws its own offset: 64 images over 25 offsets must hit many of them.
  CHECK(offsets.size() >= 10);
}

TEST_CASE("horizontal flips mirror about half the images", "[data][augment]") {
  torch::manual_seed(5);
  const auto images = distinct_images(200, 2, 4, 5);
  lowbit::AugmentOptions options;
  options.horizontal_flip = true;
  const auto out = lowbit::augment_batch(images, options);

  int64_t flipped = 0;
  for (int64_t i = 0; i < images.size(0); ++i) {
    const bool same = out[i].equal(images[i]);
    const bool mirrored = out[i].equal(images[i].flip({2}));
    INFO("image " << i);
    REQUIRE(same != mirrored);
    flipped += mirrored ? 1 : 0;
  }
  CHECK(flipped > 60);
  CHECK(flipped < 140);
}

TEST_CASE("crop and flip together give a mirrored window", "[data][augment]") {
  torch::manual_seed(9);
  const int64_t pad = 1;
  const auto images = distinct_images(32, 1, 5, 5);
  lowbit::AugmentOptions options;
  options.crop_padding = pad;
  options.horizontal_flip = true;
  const auto out = lowbit::augment_batch(images, options);
  for (int64_t i = 0; i < images.size(0); ++i) {
    const bool plain = find_window(images[i], out[i], pad).first >= 0;
    const bool mirrored = find_window(images[i].flip({2}), out[i], pad).first >= 0;
    INFO("image " << i);
    REQUIRE((plain || mirrored));
  }
}

TEST_CASE("augment_batch repeats under the same seed", "[data][augment]") {
  const auto images = distinct_images(16, 1, 8, 8);
  lowbit::AugmentOptions options;
  options.crop_padding = 3;
  options.horizontal_flip = true;
  torch::manual_seed(42);
  const auto a = lowbit::augment_batch(images, options);
  torch::manual_seed(42);
  const auto b = lowbit::augment_batch(images, options);
  torch::manual_seed(43);
  const auto c = lowbit::augment_batch(images, options);
  CHECK(a.equal(b));
  CHECK_FALSE(a.equal(c));
}

TEST_CASE("augment_batch rejects bad input", "[data][augment]") {
  lowbit::AugmentOptions options;
  options.crop_padding = -1;
  CHECK_THROWS_AS(lowbit::augment_batch(distinct_images(1, 1, 2, 2), options),
                  std::invalid_argument);
  options.crop_padding = 1;
  CHECK_THROWS_AS(lowbit::augment_batch(torch::zeros({3, 4}), options), std::invalid_argument);
}

TEST_CASE("augment_batch runs on CUDA batches", "[data][augment][cuda]") {
  if (!torch::cuda::is_available()) {
    LOWBIT_SKIP("no CUDA device");
  }
  torch::manual_seed(3);
  const auto images = distinct_images(16, 1, 6, 6).to(torch::kCUDA);
  lowbit::AugmentOptions options;
  options.crop_padding = 2;
  options.horizontal_flip = true;
  const auto out = lowbit::augment_batch(images, options);
  CHECK(out.device() == images.device());
  const auto host_in = images.cpu(), host_out = out.cpu();
  for (int64_t i = 0; i < 16; ++i) {
    const bool plain = find_window(host_in[i], host_out[i], 2).first >= 0;
    const bool mirrored = find_window(host_in[i].flip({2}), host_out[i], 2).first >= 0;
    REQUIRE((plain || mirrored));
  }
}
