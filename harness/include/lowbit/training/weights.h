#pragma once
// Where a finished trial's weights are kept, and how they are written and read back.

#include <lowbit/sdk/network.h>

#include <torch/torch.h>

#include <string>

namespace lowbit {

/// Saves the module's parameters and buffers (LibTorch's archive format) through a temporary
/// file, so an interrupted save never leaves a truncated file under the final name; a full disk
/// is a StorageError naming the file.
void save_weights(torch::nn::Module& module, const std::string& path);
/// The data dimensions a run's networks were built for (at model_spec_path), so `lowbit export`
/// can rebuild them without the data.
void save_model_spec(const ModelSpec& spec, const std::string& path);
/// Throws std::runtime_error naming the file when it is missing or malformed.
ModelSpec load_model_spec(const std::string& path);

/// Loads what save_weights wrote into a module of the same architecture.
void load_weights(torch::nn::Module& module, const std::string& path);

}  // namespace lowbit
