#pragma once
// Where a finished trial's weights are kept, and how they are written and read back.

#include <torch/torch.h>

#include <string>

namespace lowbit {

/// <folder of the database>/weights/<run hash>/trial-<index>.pt
std::string trial_weights_path(const std::string& database, const std::string& run_hash,
                               int64_t trial_index);

/// Saves the module's parameters and buffers (LibTorch's archive format) through a temporary
/// file, so an interrupted save never leaves a truncated file under the final name.
void save_weights(torch::nn::Module& module, const std::string& path);
/// Loads what save_weights wrote into a module of the same architecture.
void load_weights(torch::nn::Module& module, const std::string& path);

}  // namespace lowbit
