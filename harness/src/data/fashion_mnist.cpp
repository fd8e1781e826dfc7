#include <lowbit/data/fashion_mnist.h>

#include <lowbit/data/idx.h>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join moved here in fmt 11

#include <filesystem>
#include <stdexcept>
#include <string>

namespace lowbit {
namespace {

constexpr int64_t kClasses = 10;
constexpr int64_t kFashionMnistImageSize = 28;

// Debian ships the files gzipped; a hand-downloaded copy may be unpacked. Either will do.
std::string find_file(const std::string& root, const std::string& stem) {
  const std::filesystem::path base = std::filesystem::path(root) / stem;
  const std::string gz = base.string() + ".gz";
  if (std::filesystem::exists(gz)) return gz;
  if (std::filesystem::exists(base)) return base.string();
  throw std::runtime_error(
      fmt::format("Fashion-MNIST: missing file {} (or {}); root is {}", gz, base.string(), root));
}

torch::Tensor read_images(const std::string& path) {
  torch::Tensor raw = read_idx(path);
  if (raw.dim() != 3 || raw.size(1) != kFashionMnistImageSize ||
      raw.size(2) != kFashionMnistImageSize) {
    throw std::runtime_error(fmt::format("Fashion-MNIST: {} has shape {}, expected [N, {}, {}]",
                                         path, fmt::join(raw.sizes().vec(), ", "),
                                         kFashionMnistImageSize, kFashionMnistImageSize));
  }
  return raw.unsqueeze(1).to(torch::kFloat32).div_(255.0);
}

torch::Tensor read_labels(const std::string& path) {
  torch::Tensor raw = read_idx(path);
  if (raw.dim() != 1) {
    throw std::runtime_error(
        fmt::format("Fashion-MNIST: {} has {} dimensions, expected 1", path, raw.dim()));
  }
  if (raw.numel() > 0 && raw.max().item<int64_t>() >= kClasses) {
    throw std::runtime_error(fmt::format("Fashion-MNIST: {} holds label {}; allowed 0..{}", path,
                                         raw.max().item<int64_t>(), kClasses - 1));
  }
  return raw.to(torch::kInt64);
}

TensorDataset read_split(const std::string& root, const std::string& prefix) {
  const std::string image_path = find_file(root, prefix + "-images-idx3-ubyte");
  const std::string label_path = find_file(root, prefix + "-labels-idx1-ubyte");
  TensorDataset split{read_images(image_path), read_labels(label_path)};
  if (split.images.size(0) != split.labels.size(0)) {
    throw std::runtime_error(fmt::format("Fashion-MNIST: {} holds {} images but {} holds {} labels",
                                         image_path, split.images.size(0), label_path,
                                         split.labels.size(0)));
  }
  return split;
}

}  // namespace

DataSplits load_fashion_mnist(const std::string& root) {
  DataSplits splits;
  splits.name = "fashion-mnist";
  splits.train = read_split(root, "train");
  splits.test = read_split(root, "t10k");
  splits.num_classes = kClasses;
  splits.channels = 1;
  splits.image_size = kFashionMnistImageSize;

  // Statistics come from the training set only, so the test set tells us nothing it should not.
  if (splits.train.size() == 0) {
    throw std::runtime_error(fmt::format("Fashion-MNIST: no training images under {}", root));
  }
  const torch::Tensor mean = splits.train.images.mean();
  // A constant image set has std 0; dividing by it would fill the data with NaNs.
  const torch::Tensor std = splits.train.images.std().clamp_min(1e-6);
  splits.train.images.sub_(mean).div_(std);
  splits.test.images.sub_(mean).div_(std);
  // Zero through the same operations, so padding matches the images' black pixels bit for bit.
  splits.black = torch::zeros({1}, torch::kFloat32).sub_(mean).div_(std);
  return splits;
}

}  // namespace lowbit
