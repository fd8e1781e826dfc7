#include <lowbit/data/cifar.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <vector>

namespace lowbit {
namespace {

constexpr int64_t kCifarImageSize = 32;
constexpr int64_t kPixelBytes = 3 * kCifarImageSize * kCifarImageSize;

std::string resolve_root(const std::string& root, const std::string& archive_folder,
                         const std::string& marker, const std::string& data_set) {
  namespace fs = std::filesystem;
  if (fs::exists(fs::path(root) / marker)) return root;
  if (fs::exists(fs::path(root) / archive_folder / marker))
    return (fs::path(root) / archive_folder).string();
  throw std::runtime_error(fmt::format("{}: missing file {} (nor {}); root is {}", data_set,
                                       (fs::path(root) / marker).string(),
                                       (fs::path(root) / archive_folder / marker).string(), root));
}

TensorDataset concatenate(const std::vector<TensorDataset>& parts) {
  std::vector<torch::Tensor> images, labels;
  for (const auto& part : parts) {
    images.push_back(part.images);
    labels.push_back(part.labels);
  }
  return {torch::cat(images), torch::cat(labels)};
}

DataSplits finish(std::string name, TensorDataset train, TensorDataset test, int64_t classes,
                  const std::string& root) {
  if (train.size() == 0)
    throw std::runtime_error(fmt::format("{}: no training images under {}", name, root));
  // Per-channel statistics from the training set only.
  auto mean = train.images.mean({0, 2, 3}, /*keepdim=*/true);
  auto std = train.images.std({0, 2, 3}, /*unbiased=*/true, /*keepdim=*/true).clamp_min(1e-6);
  train.images.sub_(mean).div_(std);
  test.images.sub_(mean).div_(std);
  DataSplits splits;
  // Zero through the same operations, so padding matches the images' black pixels bit for bit.
  splits.black = torch::zeros_like(mean).sub_(mean).div_(std).flatten();
  splits.name = std::move(name);
  splits.train = std::move(train);
  splits.test = std::move(test);
  splits.num_classes = classes;
  splits.channels = 3;
  splits.image_size = kCifarImageSize;
  return splits;
}

}  // namespace

TensorDataset read_cifar_file(const std::string& path, int label_bytes, int label_index,
                              int64_t classes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("CIFAR: cannot open {}", path));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const int64_t record = label_bytes + kPixelBytes;
  const auto size = static_cast<int64_t>(bytes.size());
  if (size == 0 || size % record != 0) {
    throw std::runtime_error(fmt::format(
        "CIFAR: {} is corrupt or truncated: {} bytes is not a whole number of {}-byte records",
        path, size, record));
  }
  const int64_t count = size / record;
  auto raw = torch::from_blob(bytes.data(), {count, record}, torch::kUInt8);
  auto labels = raw.select(1, label_index).to(torch::kInt64);
  const int64_t largest = labels.max().item<int64_t>();
  if (largest >= classes) {
    throw std::runtime_error(
        fmt::format("CIFAR: {} holds label {}; allowed 0..{}", path, largest, classes - 1));
  }
  auto images = raw.narrow(1, label_bytes, kPixelBytes)
                    .reshape({count, 3, kCifarImageSize, kCifarImageSize})
                    .to(torch::kFloat32)
                    .div_(255.0);
  return {images, labels};
}

DataSplits load_cifar10(const std::string& root) {
  const auto folder = resolve_root(root, "cifar-10-batches-bin", "test_batch.bin", "CIFAR-10");
  std::vector<TensorDataset> batches;
  for (int i = 1; i <= 5; ++i) {
    const auto path =
        (std::filesystem::path(folder) / fmt::format("data_batch_{}.bin", i)).string();
    if (!std::filesystem::exists(path))
      throw std::runtime_error(fmt::format("CIFAR-10: missing file {}", path));
    batches.push_back(read_cifar_file(path, 1, 0, 10));
  }
  auto test =
      read_cifar_file((std::filesystem::path(folder) / "test_batch.bin").string(), 1, 0, 10);
  return finish("cifar10", concatenate(batches), std::move(test), 10, root);
}

DataSplits load_cifar100(const std::string& root, const std::string& labels) {
  if (labels != "fine" && labels != "coarse") {
    throw std::invalid_argument(
        fmt::format("CIFAR-100: labels = \"{}\" (allowed: \"fine\", \"coarse\")", labels));
  }
  const bool fine = labels == "fine";
  const int64_t classes = fine ? 100 : 20;
  const auto folder = resolve_root(root, "cifar-100-binary", "test.bin", "CIFAR-100");
  const auto train_path = (std::filesystem::path(folder) / "train.bin").string();
  if (!std::filesystem::exists(train_path))
    throw std::runtime_error(fmt::format("CIFAR-100: missing file {}", train_path));
  auto train = read_cifar_file(train_path, 2, fine ? 1 : 0, classes);
  auto test = read_cifar_file((std::filesystem::path(folder) / "test.bin").string(), 2,
                              fine ? 1 : 0, classes);
  return finish("cifar100", std::move(train), std::move(test), classes, root);
}

}  // namespace lowbit
