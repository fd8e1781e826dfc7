#pragma once
// Augmentation applied to whole batches on the device the batch lives on.

#include <torch/torch.h>

namespace lowbit {

struct AugmentOptions {
  int64_t crop_padding = 0;  ///< random crop of the original size from a zero-padded image (0: off)
  bool horizontal_flip = false;
};

/// Random crop and flip per image, drawn from the global torch generator (so seeded runs repeat).
torch::Tensor augment_batch(const torch::Tensor& images, const AugmentOptions& options);

}  // namespace lowbit
