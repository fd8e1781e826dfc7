#pragma once
// Where a trial's weights start when it does not start from its seed ("init"): a finished trial's
// weights file, or a state dict saved from Python. Both are read into tensors by name and copied
// into a network by name; what does not fit is an error that lists every key at fault.

#include <torch/torch.h>

#include <map>
#include <string>

namespace lowbit {

/// A module's tensors by dotted name, as a state dict names them ("layer1.0.conv1.weight").
using NamedTensors = std::map<std::string, torch::Tensor>;

/// The parameters and buffers of a weights file written by save_weights (a finished trial).
NamedTensors read_weights_file(const std::string& path);

/// A state dict saved from Python as a plain dict of tensors:
///   torch.save(dict(model.state_dict()), "file.pt")
/// LibTorch's reader cannot read the OrderedDict that model.state_dict() itself is; such a file
/// is refused with that line in the message.
NamedTensors read_state_dict(const std::string& path);

/// Copies `source` into `module` by name. The state of tensor quantizers (an LQ-Net basis, a
/// PACT clip) is never copied: it keeps the module's own initialisation for the module's bits,
/// which a full-precision source never had; source keys inside a quantizer the module has are
/// ignored. torchvision's ResNet names are accepted for the zoo's ("downsample.0" for
/// "shortcut", "downsample.1" for "shortcut_bn"). Throws std::runtime_error naming `origin` and
/// listing every key the source lacks, has with another shape, or has that the module lacks.
void load_named_tensors(torch::nn::Module& module, const NamedTensors& source,
                        const std::string& origin);

}  // namespace lowbit
