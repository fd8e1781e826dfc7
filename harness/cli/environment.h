#pragma once
// What the `lowbit` commands share: the --plugin-dir folders and the components (built-in models
// and plugins), loaded only by the commands that build networks.

#include <lowbit/plugins/plugin_loader.h>
#include <lowbit/sdk/registry.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lowbit::cli {

struct Components {
  Registry registry;
  PluginLoader plugins{registry};
  /// Plugins that did not load; the others did. `lowbit plugins` lists them, training refuses them.
  std::vector<PluginFailure> failures;
};

class Environment {
 public:
  explicit Environment(std::vector<std::string> plugin_dirs)
      : plugin_dirs_(std::move(plugin_dirs)) {}

  /// The --plugin-dir folders as given, passed on to jobs and Slurm tasks.
  const std::vector<std::string>& plugin_dirs() const { return plugin_dirs_; }

  /// Built-in models, then every plugin on the search path; loaded on first use, so table, report
  /// and merge, which only read databases, never load a plugin.
  Components& components();

  /// components(), but throws listing every plugin that failed to load: a sweep run without one
  /// would be refused half-way, or recorded without a component it should have had.
  Components& complete_components();

 private:
  std::vector<std::string> plugin_dirs_;
  std::unique_ptr<Components> components_;
};

/// This `lowbit` binary's canonical path, for the processes it starts (jobs, Slurm tasks).
std::string lowbit_executable();

}  // namespace lowbit::cli
