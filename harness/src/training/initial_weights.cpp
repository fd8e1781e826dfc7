#include <lowbit/training/initial_weights.h>
#include <lowbit/util/exception_message.h>

#include <fmt/format.h>

#include <fstream>
#include <iterator>
#include <stdexcept>
#include <vector>

namespace lowbit {

NamedTensors read_state_dict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open the state dict", path));
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  const std::string how =
      "save it from Python as a plain dict of tensors: "
      "torch.save(dict(model.state_dict()), \"file.pt\")";
  c10::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const std::exception& e) {
    // LibTorch reads Python's OrderedDict as None (it expects one only inside tensors), so a
    // state dict saved as it is ends here.
    throw std::runtime_error(fmt::format("{}: LibTorch cannot read it as a state dict ({}); {}",
                                         path, exception_message(e), how));
  }
  if (!value.isGenericDict()) {
    throw std::runtime_error(
        fmt::format("{}: holds a {}, not a dict of tensors; {}", path, value.tagKind(), how));
  }
  NamedTensors tensors;
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor()) {
      throw std::runtime_error(
          fmt::format("{}: an entry of the dict is not a name and a tensor (key {}, value {}); {}",
                      path, item.key().tagKind(), item.value().tagKind(), how));
    }
    tensors[item.key().toStringRef()] = item.value().toTensor();
  }
  return tensors;
}

}  // namespace lowbit
