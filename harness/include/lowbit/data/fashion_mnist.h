#pragma once

#include <lowbit/data/dataset.h>

namespace lowbit {

/// Fashion-MNIST from `root` (Debian's dataset-fashion-mnist installs it under
/// /usr/share/datasets/fashion-mnist): the four IDX files, plain or .gz. Images become float
/// 1x28x28 normalised by the training set's mean and std.
DataSplits load_fashion_mnist(const std::string& root);

}  // namespace lowbit
