#pragma once
// IDX files (the MNIST family's format), plain or gzip-compressed.

#include <torch/torch.h>

#include <string>

namespace lowbit {

/// Reads an IDX file as a uint8 tensor of the shape its header declares. A ".gz" file is
/// decompressed on the fly. Throws std::runtime_error naming the file on a bad header, a
/// truncated body or an unsupported element type.
torch::Tensor read_idx(const std::string& path);

}  // namespace lowbit
