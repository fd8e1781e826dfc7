#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/quantizer.h>
#include <lowbit/sdk/weights.h>

#include <fmt/format.h>

#include <fstream>
#include <stdexcept>
#include <vector>

namespace lowbit {
namespace {

std::string dotted(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

void flatten(torch::serialize::InputArchive& archive, const std::string& prefix,
             NamedTensors& out) {
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
  static const std::pair<const char*, const char*> renames[] = {
      {".downsample.0.", ".shortcut."}, {".downsample.1.", ".shortcut_bn."}};
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

/// LibTorch's messages carry a backtrace after their first line.
std::string first_line(const std::string& message) { return message.substr(0, message.find('\n')); }

}  // namespace

NamedTensors read_weights_file(const std::string& path) {
  if (!std::ifstream(path).good())
    throw std::runtime_error(fmt::format("{}: no weights file there", path));
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path, torch::kCPU);
  } catch (const std::exception& e) {
    throw std::runtime_error(
        fmt::format("{}: not a weights file lowbit can read ({})", path, first_line(e.what())));
  }
  NamedTensors tensors;
  flatten(archive, "", tensors);
  return tensors;
}

void load_named_tensors(torch::nn::Module& module, const NamedTensors& source,
                        const std::string& origin, const LoadOptions& options) {
  std::vector<std::string> quantizer_prefixes;
  for (const auto& item : module.named_modules()) {
    if (std::dynamic_pointer_cast<TensorQuantizerImpl>(item.value())) {
      quantizer_prefixes.push_back(item.key() + ".");
    }
  }
  auto in_quantizer = [&](const std::string& key) {
    if (options.quantizer_state) return false;
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
    } else if (!options.ignore_unexpected) {
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
    if (!unexpected.empty())
      problems += fmt::format("; not in the network: {}", listed(unexpected));
    throw std::runtime_error(fmt::format("{} does not fit the network{}", origin, problems));
  }

  torch::NoGradGuard no_grad;
  for (auto& [key, target] : targets) {
    const auto found = renamed.find(key);
    if (found != renamed.end()) target.copy_(found->second);
  }
}

}  // namespace lowbit
