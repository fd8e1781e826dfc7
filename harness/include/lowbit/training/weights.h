#pragma once
// Where a finished trial's weights are kept, and how they are written and read back.

#include <lowbit/sdk/network.h>

#include <torch/torch.h>

#include <string>

namespace lowbit {

/// <folder of the database>/weights/<run hash>/trial-<index>.pt
std::string trial_weights_path(const std::string& database, const std::string& run_hash,
                               int64_t trial_index);

/// Saves the module's parameters and buffers (LibTorch's archive format) through a temporary
/// file, so an interrupted save never leaves a truncated file under the final name.
void save_weights(torch::nn::Module& module, const std::string& path);
/// <folder of the database>/weights/<run hash>/model_spec.json: the data dimensions the run's
/// networks were built for, so `lowbit export` can rebuild them without the data.
std::string model_spec_path(const std::string& database, const std::string& run_hash);
void save_model_spec(const ModelSpec& spec, const std::string& path);
/// Throws std::runtime_error naming the file when it is missing or malformed.
ModelSpec load_model_spec(const std::string& path);

/// Loads what save_weights wrote into a module of the same architecture.
void load_weights(torch::nn::Module& module, const std::string& path);

}  // namespace lowbit
