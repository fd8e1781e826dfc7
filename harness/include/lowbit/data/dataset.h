#pragma once
// Data sets are held whole, as tensors on the training device: the benchmark's small images fit,
// and batches then cost one index_select instead of a loader pipeline.

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace lowbit {

/// Images as float NCHW, already normalised; labels as int64 class indices.
struct TensorDataset {
  torch::Tensor images;
  torch::Tensor labels;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  TensorDataset to(torch::Device device) const;
  /// The first `count` examples (all of them when count <= 0 or count >= size()).
  TensorDataset head(int64_t count) const;
};

struct DataSplits {
  std::string name;
  TensorDataset train;
  TensorDataset test;
  int64_t num_classes = 0;
  int64_t channels = 0;
  int64_t image_size = 0;
};

struct DataOptions {
  std::string name = "fashion-mnist";  ///< "fashion-mnist" or "synthetic"
  std::string root = "/usr/share/datasets/fashion-mnist";
  int64_t limit = 0;       ///< train on the first `limit` images only (0: all)
  int64_t test_limit = 0;  ///< evaluate on the first `test_limit` images only (0: all)
  // Synthetic data only:
  int64_t synthetic_train = 512;
  int64_t synthetic_test = 128;
  int64_t synthetic_classes = 4;
  int64_t synthetic_channels = 1;
  int64_t synthetic_image_size = 16;
  uint64_t synthetic_seed = 7;
};

/// Loads the named data set (errors name the file or option at fault).
DataSplits load_dataset(const DataOptions& options);

}  // namespace lowbit
