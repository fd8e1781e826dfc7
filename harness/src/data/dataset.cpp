#include <lowbit/data/dataset.h>

#include <lowbit/data/cifar.h>
#include <lowbit/data/fashion_mnist.h>
#include <lowbit/data/image_folder.h>
#include <lowbit/data/synthetic.h>

#include <fmt/format.h>

#include <stdexcept>

namespace lowbit {
namespace {

torch::Tensor to_device(const torch::Tensor& tensor, torch::Device device) {
  return tensor.defined() ? tensor.to(device) : tensor;
}

void check_limit(int64_t value, const char* field) {
  if (value < 0) {
    throw std::invalid_argument(
        fmt::format("data option {} = {}: must be >= 0 (0: use all examples)", field, value));
  }
}

constexpr int64_t kMaxPad = 64;

void check_pad(const DataOptions& options) {
  if (options.pad < 0 || options.pad > kMaxPad) {
    throw std::invalid_argument(
        fmt::format("data option pad = {}: must be 0..{} (pixels of black on every side)",
                    options.pad, kMaxPad));
  }
  if (options.pad > 0 && options.name == "imagefolder") {
    throw std::invalid_argument(
        fmt::format("data option pad = {}: not for \"imagefolder\", whose images are resized "
                    "and cropped as they stream (allowed: 0)",
                    options.pad));
  }
}

/// Surrounds every image with `pad` pixels of `black` (one value per channel). The images are
/// copied into the middle, not recomputed, so the centre is the unpadded image bit for bit.
TensorDataset padded(TensorDataset split, int64_t pad, const torch::Tensor& black) {
  const torch::Tensor& images = split.images;
  const int64_t height = images.size(2);
  const int64_t width = images.size(3);
  torch::Tensor out = torch::empty(
      {images.size(0), images.size(1), height + 2 * pad, width + 2 * pad}, images.options());
  out.copy_(black.to(images.options()).view({1, -1, 1, 1}).expand_as(out));
  out.narrow(2, pad, height).narrow(3, pad, width).copy_(images);
  split.images = out;
  return split;
}

DataSplits load_by_name(const DataOptions& options) {
  if (options.name == "fashion-mnist") return load_fashion_mnist(options.root);
  if (options.name == "synthetic") return make_synthetic(options);
  if (options.name == "cifar10") return load_cifar10(options.root);
  if (options.name == "cifar100") return load_cifar100(options.root, options.cifar100_labels);
  if (options.name == "imagefolder") return load_image_folder(options);
  throw std::invalid_argument(fmt::format(
      "data option name = \"{}\": unknown data set (allowed: \"fashion-mnist\", \"synthetic\", "
      "\"cifar10\", \"cifar100\", \"imagefolder\")",
      options.name));
}

}  // namespace

TensorDataset TensorDataset::to(torch::Device device) const {
  return {to_device(images, device), to_device(labels, device), source};
}

TensorDataset TensorDataset::head(int64_t count) const {
  if (count <= 0 || count >= size()) return *this;
  // Copy rather than view: a view would keep the whole data set's storage alive, and the point
  // of a limit is usually to run small. A streamed set keeps its source: its first `count`
  // indices are the same examples.
  auto held = images.defined() ? images.narrow(0, 0, count).clone() : images;
  return {held, labels.narrow(0, 0, count).clone(), source};
}

torch::Tensor TensorDataset::select(const torch::Tensor& indices) const {
  if (images.defined()) return images.index_select(0, indices);
  return source->images(indices.to(torch::kCPU)).to(labels.device());
}

torch::Tensor TensorDataset::slice(int64_t start, int64_t length) const {
  if (images.defined()) return images.narrow(0, start, length);
  return source->images(torch::arange(start, start + length, torch::kLong)).to(labels.device());
}

DataSplits load_dataset(const DataOptions& options) {
  check_limit(options.limit, "limit");
  check_limit(options.test_limit, "test_limit");
  check_pad(options);
  DataSplits splits = load_by_name(options);
  splits.train = splits.train.head(options.limit);
  splits.test = splits.test.head(options.test_limit);
  if (options.pad > 0) {
    // Padding after the limits pads only the images kept; the loader normalised with the
    // statistics of the unpadded images, and its black is the normalised zero.
    const torch::Tensor black =
        splits.black.defined() ? splits.black : torch::zeros({splits.channels}, torch::kFloat32);
    splits.train = padded(splits.train, options.pad, black);
    splits.test = padded(splits.test, options.pad, black);
    splits.image_size += 2 * options.pad;
  }
  return splits;
}

}  // namespace lowbit
