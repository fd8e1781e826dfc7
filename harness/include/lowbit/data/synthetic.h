#pragma once

#include <lowbit/data/dataset.h>

namespace lowbit {

/// A small learnable data set for tests: each class has a fixed random template; an image is its
/// class template plus noise. Deterministic in `options.synthetic_seed`.
DataSplits make_synthetic(const DataOptions& options);

}  // namespace lowbit
