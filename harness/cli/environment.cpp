#include "environment.h"

#include <lowbit/models/zoo.h>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/filesystem.hpp>

#include <stdexcept>

namespace lowbit::cli {

Components& Environment::components() {
  if (components_) return *components_;
  auto loaded = std::make_unique<Components>();
  models::register_builtin_models(loaded->registry);
  for (const auto& folder : PluginLoader::search_path(plugin_dirs_)) {
    auto failures = loaded->plugins.load_directory(folder);
    loaded->failures.insert(loaded->failures.end(), failures.begin(), failures.end());
  }
  components_ = std::move(loaded);
  return *components_;
}

Components& Environment::complete_components() {
  auto& loaded = components();
  if (loaded.failures.empty()) return loaded;
  std::string message = "some plugins could not be loaded:";
  for (const auto& failure : loaded.failures) message += "\n  " + failure.reason;
  throw std::runtime_error(message);
}

std::string lowbit_executable() {
  return boost::filesystem::canonical(boost::dll::program_location()).string();
}

}  // namespace lowbit::cli
