#pragma once
// Loads plugin shared libraries with Boost.DLL and lets them register their components.
// Libraries are never unloaded: modules, autograd nodes and std::functions a plugin created point
// into its code and may outlive any scope we could give the library.

#include <lowbit/sdk/registry.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace lowbit {

/// A plugin that could not be loaded; the message names the file and the reason.
class PluginError : public std::runtime_error {
 public:
  PluginError(const std::string& path, const std::string& reason);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct LoadedPlugin {
  std::string path;  ///< canonical path of the file
  std::string name;  ///< the plugin's own name
  std::string sha1;  ///< of the file's bytes, recorded with every trial that uses it
};

struct PluginFailure {
  std::string path;
  std::string reason;
};

class PluginLoader {
 public:
  explicit PluginLoader(Registry& registry) : registry_(registry) {}

  /// Loads one plugin file: checks the file, the entry point, the API version and the build id,
  /// then registers its components. Throws PluginError. Loading the same file twice is a no-op.
  /// Returns a copy: a reference into loaded() would dangle after the next load.
  LoadedPlugin load(const std::string& path);
  /// Loads every "*.so" in `directory` (in name order); returns the ones that failed, so a
  /// caller can list what did load and say what did not.
  std::vector<PluginFailure> load_directory(const std::string& directory);

  const std::vector<LoadedPlugin>& loaded() const { return loaded_; }
  /// Hash of a loaded plugin's file, "" for built-ins.
  std::string sha1_of(const std::string& origin) const;

  /// Where plugins are looked for: the folder installed beside the `lowbit` binary
  /// (<bin>/../<libdir>/lowbit/plugins, <libdir> as installed), then each folder of
  /// LOWBIT_PLUGIN_PATH (':'-separated), then `extra` (--plugin-dir). Folders that do not exist are
  /// left out, except `extra` ones.
  static std::vector<std::string> search_path(const std::vector<std::string>& extra);

 private:
  Registry& registry_;
  std::vector<LoadedPlugin> loaded_;
};

}  // namespace lowbit
