// CIFAR binary files and image folders: tiny files written here and read back.
#include <lowbit/data/cifar.h>
#include <lowbit/data/dataset.h>
#include <lowbit/data/image_folder.h>
#include <lowbit/experiment/experiment.h>
#include <lowbit/results/store.h>
#include <lowbit/runner/sweep.h>

#include "test_support.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <stb_image_write.h>

#include <boost/filesystem.hpp>

#include <fstream>
#include <vector>

using Catch::Matchers::Contains;

namespace {

constexpr int kPixels = 3 * 32 * 32;

/// Writes `count` records; record i has labels (i % 20, i % 100) or (i % 10) and pixels i + p.
void write_cifar(const std::string& path, int count, int label_bytes, int first = 0) {
  std::ofstream out(path, std::ios::binary);
  for (int i = first; i < first + count; ++i) {
    if (label_bytes == 2) {
      out.put(static_cast<char>(i % 20));
      out.put(static_cast<char>(i % 100));
    } else {
      out.put(static_cast<char>(i % 10));
    }
    for (int p = 0; p < kPixels; ++p) out.put(static_cast<char>((i + p) % 256));
  }
}

void write_image(const std::string& path, int width, int height, unsigned char red) {
  std::vector<unsigned char> pixels(width * height * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      auto* pixel = &pixels[(y * width + x) * 3];
      pixel[0] = red;
      pixel[1] = static_cast<unsigned char>(x * 255 / (width - 1));  // a left-to-right ramp
      pixel[2] = 0;
    }
  }
  const bool png = path.size() > 4 && path.substr(path.size() - 4) == ".png";
  const int ok = png ? stbi_write_png(path.c_str(), width, height, 3, pixels.data(), width * 3)
                     : stbi_write_jpg(path.c_str(), width, height, 3, pixels.data(), 95);
  REQUIRE(ok != 0);
}

void make_folders(const lowbit::testing::TemporaryFolder& root,
                  const std::vector<std::string>& paths) {
  for (const auto& path : paths) boost::filesystem::create_directories(root.file(path));
}

}  // namespace

TEST_CASE("CIFAR-10 binary batches are read back", "[data][cifar]") {
  lowbit::testing::TemporaryFolder root;
  boost::filesystem::create_directories(root.file("cifar-10-batches-bin"));
  for (int b = 1; b <= 5; ++b) {
    write_cifar(root.file("cifar-10-batches-bin/data_batch_" + std::to_string(b) + ".bin"), 3, 1,
                (b - 1) * 3);
  }
  write_cifar(root.file("cifar-10-batches-bin/test_batch.bin"), 4, 1, 100);

  auto record =
      lowbit::read_cifar_file(root.file("cifar-10-batches-bin/data_batch_2.bin"), 1, 0, 10);
  REQUIRE(record.size() == 3);
  CHECK(record.labels[0].item<int64_t>() == 3);
  // Record 3's first red pixel is 3/255, its first green pixel (3 + 1024) % 256 / 255.
  CHECK(record.images[0][0][0][0].item<float>() == Approx(3.0 / 255));
  CHECK(record.images[0][1][0][0].item<float>() == Approx((3 + 1024) % 256 / 255.0));
  CHECK(record.images[0][0][0][1].item<float>() == Approx(4.0 / 255));

  lowbit::DataOptions options;
  options.name = "cifar10";
  options.root = root.file("");  // the archive's folder is found inside
  auto splits = lowbit::load_dataset(options);
  CHECK(splits.train.size() == 15);
  CHECK(splits.test.size() == 4);
  CHECK(splits.num_classes == 10);
  CHECK(splits.channels == 3);
  CHECK(splits.image_size == 32);
  CHECK(splits.train.labels[14].item<int64_t>() == 4);
  CHECK(splits.test.labels[0].item<int64_t>() == 0);
  // Normalised per channel by the training set's statistics.
  auto mean = splits.train.images.mean({0, 2, 3});
  CHECK(mean.abs().max().item<float>() < 1e-4);

  // pad: every channel's border is that channel's normalised black, which is its smallest value
  // (each channel of the fixture holds raw 0s); the centres are the unpadded images.
  CHECK(splits.black.equal(splits.train.images.amin({0, 2, 3})));
  options.pad = 2;
  auto padded = lowbit::load_dataset(options);
  CHECK(padded.image_size == 36);
  REQUIRE(padded.train.images.sizes().vec() == std::vector<int64_t>{15, 3, 36, 36});
  auto expected = splits.black.view({1, 3, 1, 1}).expand({15, 3, 36, 36}).clone();
  expected.narrow(2, 2, 32).narrow(3, 2, 32).copy_(splits.train.images);
  CHECK(padded.train.images.equal(expected));
  CHECK(padded.test.images.sizes().vec() == std::vector<int64_t>{4, 3, 36, 36});
}

TEST_CASE("CIFAR-100 keeps fine or coarse labels", "[data][cifar]") {
  lowbit::testing::TemporaryFolder root;
  write_cifar(root.file("train.bin"), 30, 2);
  write_cifar(root.file("test.bin"), 5, 2, 50);
  lowbit::DataOptions options;
  options.name = "cifar100";
  options.root = root.file("");
  auto fine = lowbit::load_dataset(options);
  CHECK(fine.num_classes == 100);
  CHECK(fine.train.size() == 30);
  CHECK(fine.train.labels[25].item<int64_t>() == 25);
  CHECK(fine.test.labels[0].item<int64_t>() == 50);
  options.cifar100_labels = "coarse";
  auto coarse = lowbit::load_dataset(options);
  CHECK(coarse.num_classes == 20);
  CHECK(coarse.train.labels[25].item<int64_t>() == 5);
  CHECK(coarse.test.labels[0].item<int64_t>() == 10);
}

TEST_CASE("missing and corrupt CIFAR files are errors naming the file", "[data][cifar]") {
  lowbit::testing::TemporaryFolder root;
  lowbit::DataOptions options;
  options.name = "cifar10";
  options.root = root.file("");
  CHECK_THROWS_WITH(lowbit::load_dataset(options), Contains("test_batch.bin"));

  write_cifar(root.file("test_batch.bin"), 2, 1);
  for (int b = 1; b <= 4; ++b)
    write_cifar(root.file("data_batch_" + std::to_string(b) + ".bin"), 2, 1);
  CHECK_THROWS_WITH(lowbit::load_dataset(options), Contains("data_batch_5.bin"));

  {
    std::ofstream truncated(root.file("data_batch_5.bin"), std::ios::binary);
    truncated << "not a CIFAR record";
  }
  CHECK_THROWS_WITH(lowbit::load_dataset(options),
                    Contains("data_batch_5.bin") && Contains("truncated"));

  write_cifar(root.file("data_batch_5.bin"), 2, 2);  // CIFAR-100 records: wrong size
  CHECK_THROWS_WITH(lowbit::load_dataset(options), Contains("data_batch_5.bin"));
  write_cifar(root.file("data_batch_5.bin"), 1, 1);
  CHECK_NOTHROW(lowbit::load_dataset(options));

  // A CIFAR-10 file whose label byte is out of range.
  std::ofstream bad(root.file("data_batch_5.bin"), std::ios::binary);
  bad.put(static_cast<char>(42));
  for (int p = 0; p < kPixels; ++p) bad.put(0);
  bad.close();
  CHECK_THROWS_WITH(lowbit::load_dataset(options),
                    Contains("data_batch_5.bin") && Contains("label 42"));
}

TEST_CASE("an image folder streams JPEG and PNG images with the ImageNet transforms",
          "[data][imagefolder]") {
  lowbit::testing::TemporaryFolder root;
  make_folders(root, {"train/cat", "train/dog", "val/cat", "val/dog"});
  write_image(root.file("train/cat/a.png"), 16, 12, 255);
  write_image(root.file("train/cat/b.JPG"), 12, 20, 250);
  write_image(root.file("train/dog/c.png"), 14, 14, 0);
  write_image(root.file("val/cat/d.png"), 16, 12, 255);
  write_image(root.file("val/dog/e.jpeg"), 12, 12, 0);
  {
    std::ofstream ignored(root.file("train/dog/notes.txt"));
    ignored << "not an image";
  }

  lowbit::DataOptions options;
  options.name = "imagefolder";
  options.root = root.file("");
  options.resize = 12;
  options.crop = 8;
  options.mean = {0.5, 0.5, 0.5};
  auto splits = lowbit::load_dataset(options);
  CHECK(splits.num_classes == 2);
  CHECK(splits.channels == 3);
  CHECK(splits.image_size == 8);
  REQUIRE(splits.train.size() == 3);
  CHECK_FALSE(splits.train.images.defined());  // streamed, not held
  CHECK(splits.train.labels.equal(torch::tensor({0, 0, 1}, torch::kLong)));
  CHECK(splits.test.labels.equal(torch::tensor({0, 1}, torch::kLong)));

  auto test = splits.test.slice(0, 2);
  REQUIRE(test.sizes() == torch::IntArrayRef({2, 3, 8, 8}));
  // PNG is lossless: the cat's red channel is 1.0 - mean everywhere, the dog's -mean.
  CHECK(test[0][0].min().item<float>() == Approx(0.5).margin(1e-5));
  CHECK(test[1][0].max().item<float>() == Approx(-0.5).margin(0.03));  // JPEG: nearly
  // Centre crop of a 16x12 image resized to 16x12: columns 4..11 of the ramp, left to right.
  auto green = test[0][1][0];
  CHECK(green[0].item<float>() < green[7].item<float>());
  CHECK(green[0].item<float>() == Approx(4 * 255 / 15 / 255.0 - 0.5).margin(0.02));

  // Training batches: random crops and flips, repeatable from the seed.
  torch::manual_seed(3);
  auto first = splits.train.select(torch::tensor({2, 0, 1}, torch::kLong));
  torch::manual_seed(3);
  auto again = splits.train.select(torch::tensor({2, 0, 1}, torch::kLong));
  REQUIRE(first.sizes() == torch::IntArrayRef({3, 3, 8, 8}));
  CHECK(first.equal(again));
  CHECK(first[0][0].max().item<float>() == Approx(-0.5).margin(1e-5));  // the dog came first
  // Over many draws the ramp appears both ways round (flipped and not).
  int flipped = 0;
  for (int i = 0; i < 20; ++i) {
    auto ramp = splits.train.select(torch::tensor({0}, torch::kLong))[0][1][0];
    if (ramp[0].item<float>() > ramp[7].item<float>()) ++flipped;
  }
  CHECK(flipped > 0);
  CHECK(flipped < 20);

  // limit keeps the first images (class order); the source still serves them.
  options.limit = 2;
  auto limited = lowbit::load_dataset(options);
  CHECK(limited.train.size() == 2);
  CHECK(limited.train.slice(0, 2).size(0) == 2);
}

TEST_CASE("image folder errors name the folder or file at fault", "[data][imagefolder]") {
  lowbit::testing::TemporaryFolder root;
  lowbit::DataOptions options;
  options.name = "imagefolder";
  options.root = root.file("");
  options.resize = 12;
  options.crop = 8;
  CHECK_THROWS_WITH(lowbit::load_dataset(options), Contains("train"));

  make_folders(root, {"train/cat", "val/cat"});
  write_image(root.file("train/cat/a.png"), 8, 8, 255);
  CHECK_THROWS_WITH(lowbit::load_dataset(options), Contains("no .jpg/.jpeg/.png"));
  write_image(root.file("val/cat/b.png"), 8, 8, 255);
  CHECK_NOTHROW(lowbit::load_dataset(options));

  make_folders(root, {"val/cow"});
  CHECK_THROWS_WITH(lowbit::load_dataset(options), Contains("cow"));
  boost::filesystem::remove_all(root.file("val/cow"));

  {
    std::ofstream corrupt(root.file("train/cat/broken.jpg"));
    corrupt << "garbage, not a JPEG";
  }
  CHECK_THROWS_WITH(lowbit::load_dataset(options), Contains("broken.jpg"));
  CHECK_THROWS_WITH(lowbit::decode_image(root.file("train/cat/broken.jpg")),
                    Contains("broken.jpg"));
  CHECK_THROWS_WITH(lowbit::decode_image(root.file("train/cat/missing.png")),
                    Contains("missing.png"));
  boost::filesystem::remove(root.file("train/cat/broken.jpg"));

  options.crop = 20;
  CHECK_THROWS_WITH(lowbit::load_dataset(options), Contains("crop"));
}

TEST_CASE("experiment files choose CIFAR and image folders with validated options",
          "[data][experiment]") {
  auto& components = lowbit::testing::shared_components();
  auto spec = lowbit::testing::tiny_experiment();
  auto parse = [&](const nlohmann::json& data) {
    spec["data"] = data;
    return lowbit::parse_experiment(spec, "data.json", components.registry);
  };
  auto cifar = parse({{"name", "cifar100"}, {"root", "/data/cifar"}, {"labels", "coarse"}});
  CHECK(cifar.data.name == "cifar100");
  CHECK(cifar.data.root == "/data/cifar");
  CHECK(cifar.data.cifar100_labels == "coarse");
  CHECK(cifar.runs.front().record.config["data"]["labels"] == "coarse");
  CHECK_THROWS_WITH(parse({{"name", "cifar10"}}), Contains("/data/root"));
  CHECK_THROWS_WITH(parse({{"name", "cifar100"}, {"root", "x"}, {"labels", "medium"}}),
                    Contains("/data/labels") && Contains("coarse"));

  auto folder = parse({{"name", "imagefolder"},
                       {"root", "/data/imagenet"},
                       {"resize", 12},
                       {"crop", 8},
                       {"mean", {0.5, 0.5, 0.5}}});
  CHECK(folder.data.resize == 12);
  CHECK(folder.data.crop == 8);
  CHECK(folder.data.mean == std::vector<double>{0.5, 0.5, 0.5});
  CHECK(folder.data.std == std::vector<double>{1.0, 1.0, 1.0});
  // Transforms are part of what a run is; the root folder is not.
  CHECK(folder.runs.front().record.config["data"]["crop"] == 8);
  CHECK(folder.runs.front().record.config["data"].count("root") == 0);
  CHECK_THROWS_WITH(parse({{"name", "imagefolder"}, {"root", "r"}, {"resize", 8}, {"crop", 12}}),
                    Contains("/data/crop"));
  CHECK_THROWS_WITH(parse({{"name", "imagefolder"}, {"root", "r"}, {"mean", {0.5, 0.5}}}),
                    Contains("/data/mean") && Contains("3 numbers"));
  CHECK_THROWS_WITH(parse({{"name", "imagenet"}}), Contains("imagefolder"));

  // Padding is part of what a run is when on; off, it is left out, so older runs keep their hash.
  auto plain = parse({{"name", "fashion-mnist"}});
  auto padded = parse({{"name", "fashion-mnist"}, {"pad", 2}});
  CHECK(plain.data.pad == 0);
  CHECK(padded.data.pad == 2);
  CHECK(plain.runs.front().record.config["data"].count("pad") == 0);
  CHECK(padded.runs.front().record.config["data"]["pad"] == 2);
  CHECK(padded.runs.front().record.hash != plain.runs.front().record.hash);
  CHECK(parse({{"name", "synthetic"}, {"pad", 64}}).data.pad == 64);
  CHECK_THROWS_WITH(parse({{"name", "synthetic"}, {"pad", 65}}),
                    Contains("/data/pad") && Contains("64"));
  CHECK_THROWS_WITH(parse({{"name", "synthetic"}, {"pad", -1}}), Contains("/data/pad"));
  CHECK_THROWS_WITH(parse({{"name", "synthetic"}, {"pad", "2"}}), Contains("/data/pad"));
  CHECK_THROWS_WITH(parse({{"name", "imagefolder"}, {"root", "r"}, {"pad", 2}}),
                    Contains("/data/pad") && Contains("imagefolder"));
}

TEST_CASE("a sweep trains on a streamed image folder", "[data][imagefolder][e2e]") {
  lowbit::testing::TemporaryFolder root;
  make_folders(root, {"train/red", "train/blue", "val/red", "val/blue"});
  for (int i = 0; i < 6; ++i) {
    write_image(root.file(fmt::format("train/red/{}.png", i)), 14 + i, 12, 255);
    write_image(root.file(fmt::format("train/blue/{}.jpg", i)), 12, 12 + i, 0);
  }
  write_image(root.file("val/red/a.png"), 12, 12, 255);
  write_image(root.file("val/blue/b.jpg"), 12, 12, 0);

  auto& components = lowbit::testing::shared_components();
  auto spec = lowbit::testing::tiny_experiment("folder");
  spec["data"] = {{"name", "imagefolder"}, {"root", root.file("")}, {"resize", 12}, {"crop", 8}};
  spec["precisions"] = {"2W2A"};
  spec["trials"] = 1;
  auto experiment = lowbit::parse_experiment(spec, "folder.json", components.registry);
  lowbit::ResultStore store(root.file("results.db"));
  lowbit::SweepRunner sweep(components.registry, components.plugins, store);
  lowbit::SweepOptions options;
  options.threads = 1;
  auto summary = sweep.run(experiment, options);
  CHECK(summary.trials_run == 1);
  CHECK(summary.trials_failed == 0);
  auto runs = store.runs("folder");
  REQUIRE(runs.size() == 1);
  auto trials = store.trials(runs.front().id);
  REQUIRE(trials.size() == 1);
  CHECK(trials.front().status == lowbit::TrialStatus::finished);
  CHECK(trials.front().epochs.size() == 2);
  CHECK(trials.front().epochs.back().images_per_second > 0);
}
