#include <lowbit/sdk/registry.h>

#include <fmt/format.h>

#include <stdexcept>

namespace lowbit {

std::string to_string(ComponentKind kind) {
  switch (kind) {
    case ComponentKind::model:
      return "model";
    case ComponentKind::quantizer:
      return "quantizer";
    case ComponentKind::strategy:
      return "strategy";
  }
  return "unknown";
}

void Registry::add_info(ComponentKind kind, const std::string& name, const std::string& summary) {
  auto key = std::make_pair(kind, name);
  auto existing = infos_.find(key);
  if (existing != infos_.end()) {
    throw std::invalid_argument(fmt::format("{} \"{}\" from {} is already registered by {}",
                                            to_string(kind), name, origin_,
                                            existing->second.origin));
  }
  infos_[key] = ComponentInfo{name, kind, summary, origin_, ""};
}

void Registry::add_model(const std::string& name, const std::string& summary,
                         ModelFactory factory) {
  add_info(ComponentKind::model, name, summary);
  models_[name] = std::move(factory);
}

void Registry::add_quantizer(const std::string& name, const std::string& summary,
                             QuantizerFactory factory) {
  add_info(ComponentKind::quantizer, name, summary);
  quantizers_[name] = std::move(factory);
}

void Registry::add_strategy(const std::string& name, const std::string& summary,
                            StrategyFactory factory, const std::string& label) {
  add_info(ComponentKind::strategy, name, summary);
  infos_[{ComponentKind::strategy, name}].label = label;
  strategies_[name] = std::move(factory);
}

bool Registry::contains(ComponentKind kind, const std::string& name) const {
  return infos_.count({kind, name}) != 0;
}

std::vector<std::string> Registry::names(ComponentKind kind) const {
  std::vector<std::string> out;
  for (const auto& [key, info] : infos_) {
    if (key.first == kind) out.push_back(key.second);
  }
  return out;
}

void Registry::require(ComponentKind kind, const std::string& name) const {
  if (contains(kind, name)) return;
  auto known = names(kind);
  std::string list;
  for (const auto& item : known) list += (list.empty() ? "" : ", ") + item;
  throw std::invalid_argument(fmt::format("unknown {} \"{}\" (registered: {})", to_string(kind),
                                          name, list.empty() ? "none" : list));
}

const ComponentInfo& Registry::info(ComponentKind kind, const std::string& name) const {
  require(kind, name);
  return infos_.at({kind, name});
}

const ModelFactory& Registry::model(const std::string& name) const {
  require(ComponentKind::model, name);
  return models_.at(name);
}

const QuantizerFactory& Registry::quantizer(const std::string& name) const {
  require(ComponentKind::quantizer, name);
  return quantizers_.at(name);
}

const StrategyFactory& Registry::strategy(const std::string& name) const {
  require(ComponentKind::strategy, name);
  return strategies_.at(name);
}

void Registry::merge(const Registry& other) {
  for (const auto& [key, info] : other.infos_) {
    auto existing = infos_.find(key);
    if (existing != infos_.end()) {
      throw std::invalid_argument(fmt::format("{} \"{}\" from {} is already registered by {}",
                                              to_string(key.first), key.second, info.origin,
                                              existing->second.origin));
    }
  }
  for (const auto& [key, info] : other.infos_) infos_[key] = info;
  for (const auto& [name, factory] : other.models_) models_[name] = factory;
  for (const auto& [name, factory] : other.quantizers_) quantizers_[name] = factory;
  for (const auto& [name, factory] : other.strategies_) strategies_[name] = factory;
}

std::vector<ComponentInfo> Registry::components() const {
  std::vector<ComponentInfo> out;
  for (const auto& [key, info] : infos_) out.push_back(info);
  return out;
}

}  // namespace lowbit
