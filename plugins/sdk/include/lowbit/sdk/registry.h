#pragma once
// The one place components are known by name. Built-ins and plugins register the same way; each
// entry remembers where it came from so `lowbit plugins` can say.

#include <lowbit/sdk/layer_factory.h>
#include <lowbit/sdk/network.h>
#include <lowbit/sdk/quantizer.h>
#include <lowbit/sdk/strategy.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lowbit {

enum class ComponentKind { model, quantizer, strategy };
std::string to_string(ComponentKind kind);

struct ComponentInfo {
  std::string name;
  ComponentKind kind = ComponentKind::model;
  std::string summary;
  std::string origin;  ///< "built-in" or the plugin file
  /// Short name in method labels and table columns (strategies: "TS", "SP", ...); "" uses `name`.
  std::string label;
};

class Registry {
 public:
  void add_model(const std::string& name, const std::string& summary, ModelFactory factory);
  void add_quantizer(const std::string& name, const std::string& summary, QuantizerFactory factory);
  /// `label` is the strategy's short name in method labels ("DoReFa+TS+PP"); "" uses `name`.
  void add_strategy(const std::string& name, const std::string& summary, StrategyFactory factory,
                    const std::string& label = "");

  /// Lookups throw std::invalid_argument listing the registered names of that kind.
  const ModelFactory& model(const std::string& name) const;
  const QuantizerFactory& quantizer(const std::string& name) const;
  const StrategyFactory& strategy(const std::string& name) const;

  bool contains(ComponentKind kind, const std::string& name) const;
  std::vector<std::string> names(ComponentKind kind) const;
  const ComponentInfo& info(ComponentKind kind, const std::string& name) const;
  /// Every component, sorted by kind then name.
  std::vector<ComponentInfo> components() const;

  /// Adds every component of `other`, keeping their origins; all or nothing (throws
  /// std::invalid_argument before adding anything if a name is taken).
  void merge(const Registry& other);

  /// Where components added from now on come from (set by the plugin loader around registration).
  void set_origin(std::string origin) { origin_ = std::move(origin); }
  const std::string& origin() const { return origin_; }

 private:
  void add_info(ComponentKind kind, const std::string& name, const std::string& summary);
  void require(ComponentKind kind, const std::string& name) const;

  std::string origin_ = "built-in";
  std::map<std::pair<ComponentKind, std::string>, ComponentInfo> infos_;
  std::map<std::string, ModelFactory> models_;
  std::map<std::string, QuantizerFactory> quantizers_;
  std::map<std::string, StrategyFactory> strategies_;
};

}  // namespace lowbit
