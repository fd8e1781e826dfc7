#pragma once
// The device a run asks for (an experiment's "device", `--device`) and the one it gets.

#include <lowbit/util/names.h>

#include <torch/torch.h>

#include <string>

namespace lowbit {

enum class DeviceChoice {
  automatic,  ///< "auto": CUDA when LibTorch sees a GPU, else the CPU
  cpu,
  cuda,
};

/// Each choice with its name in experiment files and on the command line: auto, cpu, cuda.
const NameTable<DeviceChoice>& device_choices();
std::string to_string(DeviceChoice choice);
/// Throws std::invalid_argument listing the names for any other text.
DeviceChoice parse_device_choice(const std::string& name);

/// "auto" picks CUDA when LibTorch sees a GPU; "cuda" without one is an error.
torch::Device resolve_device(DeviceChoice choice);
/// The same for a name (parse_device_choice's error for an unknown one).
torch::Device resolve_device(const std::string& requested);

}  // namespace lowbit
