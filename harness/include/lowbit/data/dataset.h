#pragma once
// Data sets are held whole, as tensors on the training device: the benchmark's small images fit,
// and batches then cost one index_select instead of a loader pipeline. A data set too large for
// that (an ImageNet image folder) streams instead: its images come from an ImageSource that
// decodes each batch when it is asked for it, while its labels are still held whole.

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lowbit {

/// Produces images on demand, for data sets that are not held in memory.
class ImageSource {
 public:
  virtual ~ImageSource() = default;
  /// The images at `indices` (int64, CPU), as float NCHW on the CPU, transformed and normalised.
  virtual torch::Tensor images(const torch::Tensor& indices) = 0;
};

/// Images as float NCHW, already normalised; labels as int64 class indices.
struct TensorDataset {
  torch::Tensor images;  ///< undefined when `source` streams them
  torch::Tensor labels;
  std::shared_ptr<ImageSource> source = nullptr;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  TensorDataset to(torch::Device device) const;
  /// The first `count` examples (all of them when count <= 0 or count >= size()).
  TensorDataset head(int64_t count) const;
  /// The images at `indices`, on the labels' device (held or streamed alike).
  torch::Tensor select(const torch::Tensor& indices) const;
  /// Images start .. start + length - 1, on the labels' device.
  torch::Tensor slice(int64_t start, int64_t length) const;
};

struct DataSplits {
  std::string name;
  TensorDataset train;
  TensorDataset test;
  int64_t num_classes = 0;
  int64_t channels = 0;
  int64_t image_size = 0;
  /// A black (all-zero) pixel after the loader's normalisation, one value per channel: what
  /// DataOptions::pad pads with. Undefined: 0 (data that is not normalised, e.g. synthetic).
  torch::Tensor black;
};

struct DataOptions {
  /// "fashion-mnist", "synthetic", "cifar10", "cifar100" or "imagefolder"
  std::string name = "fashion-mnist";
  std::string root = "/usr/share/datasets/fashion-mnist";
  int64_t limit = 0;       ///< train on the first `limit` images only (0: all)
  int64_t test_limit = 0;  ///< evaluate on the first `test_limit` images only (0: all)
  /// Pixels of black added on every side of every train and test image when loaded, 0..64
  /// (2 makes 28x28 Fashion-MNIST 32x32); augmentation's random crop then reads the padded image.
  /// Not for imagefolder, whose images are cropped as they stream.
  int64_t pad = 0;
  // Synthetic data only:
  int64_t synthetic_train = 512;
  int64_t synthetic_test = 128;
  int64_t synthetic_classes = 4;
  int64_t synthetic_channels = 1;
  int64_t synthetic_image_size = 16;
  uint64_t synthetic_seed = 7;
  // CIFAR-100 only: "fine" (100 classes) or "coarse" (20 superclasses).
  std::string cifar100_labels = "fine";
  // Image folder only (the paper's ImageNet transforms): the shorter side is resized to
  // `resize`, then training images are randomly cropped to `crop` and flipped, test images
  // centre-cropped; `mean` (per channel, on the 0..1 scale) is subtracted and the result divided
  // by `std` (1: mean subtraction only, as in the paper).
  int64_t resize = 256;
  int64_t crop = 224;
  std::vector<double> mean{0.485, 0.456, 0.406};
  std::vector<double> std{1.0, 1.0, 1.0};
};

/// Loads the named data set (errors name the file or option at fault).
DataSplits load_dataset(const DataOptions& options);

}  // namespace lowbit
