#pragma once
// A network's weights by name: reading a weights file lowbit wrote (a finished trial's), and
// copying named tensors into a module, with every key that does not fit listed in one error.
// The harness starts trials from them; strategies load their own checkpoints (KD's teacher).

#include <torch/torch.h>

#include <map>
#include <string>

namespace lowbit {

/// A module's tensors by dotted name, as a state dict names them ("layer1.0.conv1.weight").
using NamedTensors = std::map<std::string, torch::Tensor>;

/// The parameters and buffers of a weights file lowbit wrote (torch::save of a module).
/// Throws std::runtime_error naming the file when it is missing or unreadable.
NamedTensors read_weights_file(const std::string& path);

struct LoadOptions {
  /// Copy the state of tensor quantizers (an LQ-Net basis, a PACT clip) too. Off by default: a
  /// layer then keeps its own initialisation for its bits, which a full-precision source never
  /// had, and source keys inside a quantizer the module has are ignored.
  bool quantizer_state = false;
  /// Ignore source tensors the module has no place for (a quantized run's quantizer state, loaded
  /// into a full-precision network), instead of listing them as an error.
  bool ignore_unexpected = false;
};

/// Copies `source` into `module` by name. torchvision's ResNet names are accepted for the zoo's
/// ("downsample.0" for "shortcut", "downsample.1" for "shortcut_bn"). Throws std::runtime_error
/// naming `origin` and listing every key the source lacks, has with another shape, or has that
/// the module lacks.
void load_named_tensors(torch::nn::Module& module, const NamedTensors& source,
                        const std::string& origin, const LoadOptions& options = LoadOptions());

}  // namespace lowbit
