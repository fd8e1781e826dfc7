#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/quantizer.h>
#include <lowbit/training/initial_weights.h>
#include <lowbit/util/exception_message.h>

#include <fmt/format.h>

#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>
#include <vector>

namespace lowbit {
namespace {

std::string dotted(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

void flatten(torch::serialize::InputArchive& archive, const std::string& prefix, NamedTensors& out) {
  for (const auto& key : archive.keys()) {
    torch::Tensor tensor;
    torch::serialize::InputArchive child;
    if (archive.try_read(key, tensor)) {
      out[dotted(prefix, key)] = tensor;
    } else if (archive.try_read(key, child)) {
      flatten(child, dotted(prefix, key), out);
    }
  }
}

/// The zoo's name for a key torchvision names otherwise, or "" when there is none.
std::string zoo_name(const std::string& key) {
  static const std::pair<const char*, const char*> renames[] = {{".downsample.0.", ".shortcut."},
                                                                {".downsample.1.", ".shortcut_bn."}};
  for (const auto& [theirs, ours] : renames) {
    const auto at = key.find(theirs);
    if (at != std::string::npos) {
      return key.substr(0, at) + ours + key.substr(at + std::char_traits<char>::length(theirs));
    }
  }
  return "";
}

/// "a, b, c and 12 more": an error names the keys without burying the message.
std::string listed(const std::vector<std::string>& keys) {
  constexpr size_t kShown = 12;
  std::vector<std::string> shown(keys.begin(), keys.begin() + std::min(keys.size(), kShown));
  auto text = join(shown);
  if (keys.size() > kShown) text += fmt::format(" and {} more", keys.size() - kShown);
  return text;
}

}  // namespace

NamedTensors read_weights_file(const std::string& path) {
  if (!std::ifstream(path).good()) throw std::runtime_error(fmt::format("{}: no weights file there", path));
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, torch::kCPU);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: not a weights file lowbit can read ({})", path,
                                         exception_message(e)));
  }
  NamedTensors tensors;
  flatten(archive, "", tensors);
  return tensors;
}

NamedTensors read_state_dict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open the state dict", path));
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string how = "save it from Python as a plain dict of tensors: "
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
    throw std::runtime_error(fmt::format("{}: holds a {}, not a dict of tensors; {}", path,
                                         value.tagKind(), how));
  }
  NamedTensors tensors;
  for (const auto& item : value.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor()) {
      throw std::runtime_error(fmt::format(
          "{}: an entry of the dict is not a name and a tensor (key {}, value {}); {}", path,
          item.key().tagKind(), item.value().tagKind(), how));
    }
    tensors[item.key().toStringRef()] = item.value().toTensor();
  }
  return tensors;
}

void load_named_tensors(torch::nn::Module& module, const NamedTensors& source,
                        const std::string& origin) {
  std::vector<std::string> quantizer_prefixes;
  for (const auto& item : module.named_modules()) {
    if (std::dynamic_pointer_cast<TensorQuantizerImpl>(item.value())) {
      quantizer_prefixes.push_back(item.key() + ".");
    }
  }
  auto in_quantizer = [&](const std::string& key) {
    for (const auto& prefix : quantizer_prefixes) {
      if (key.compare(0, prefix.size(), prefix) == 0) return true;
    }
    return false;
  };

  std::map<std::string, torch::Tensor> targets;
  for (const auto& item : module.named_parameters()) targets[item.key()] = item.value();
  for (const auto& item : module.named_buffers()) targets[item.key()] = item.value();

  NamedTensors renamed;
  std::vector<std::string> unexpected;
  for (const auto& [key, tensor] : source) {
    if (in_quantizer(key)) continue;
    if (targets.count(key) != 0) {
      renamed[key] = tensor;
      continue;
    }
    const auto ours = zoo_name(key);
    if (!ours.empty() && targets.count(ours) != 0) {
      renamed[ours] = tensor;
    } else {
      unexpected.push_back(key);
    }
  }

  std::vector<std::string> missing;
  std::vector<std::string> mis_shaped;
  for (const auto& [key, target] : targets) {
    if (in_quantizer(key)) continue;
    const auto found = renamed.find(key);
    if (found == renamed.end()) {
      missing.push_back(key);
    } else if (found->second.sizes() != target.sizes()) {
      mis_shaped.push_back(fmt::format("{} ({} there, {} here)", key,
                                       c10::str(found->second.sizes()), c10::str(target.sizes())));
    }
  }
  if (!missing.empty() || !mis_shaped.empty() || !unexpected.empty()) {
    std::string problems;
    if (!missing.empty()) problems += fmt::format("; missing: {}", listed(missing));
    if (!mis_shaped.empty()) problems += fmt::format("; another shape: {}", listed(mis_shaped));
    if (!unexpected.empty()) problems += fmt::format("; not in the network: {}", listed(unexpected));
    throw std::runtime_error(fmt::format("{} does not fit the network{}", origin, problems));
  }

  torch::NoGradGuard no_grad;
  for (auto& [key, target] : targets) {
    const auto found = renamed.find(key);
    if (found != renamed.end()) target.copy_(found->second);
  }
}

}  // namespace lowbit
