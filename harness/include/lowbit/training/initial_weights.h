#pragma once
// Where a trial's weights start when it does not start from its seed ("init"): a finished trial's
// weights file (lowbit/sdk/weights.h), or a state dict saved from Python, read here. Both are
// copied into a network by name with load_named_tensors.

#include <lowbit/sdk/weights.h>

#include <torch/torch.h>

#include <string>

namespace lowbit {

/// A state dict saved from Python as a plain dict of tensors:
///   torch.save(dict(model.state_dict()), "file.pt")
/// LibTorch's reader cannot read the OrderedDict that model.state_dict() itself is; such a file
/// is refused with that line in the message.
NamedTensors read_state_dict(const std::string& path);

}  // namespace lowbit
