#include <lowbit/plugins/plugin_loader.h>
#include <lowbit/sdk/abi.h>
#include <lowbit/util/hash.h>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <boost/filesystem.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <dlfcn.h>

namespace lowbit {
namespace bfs = boost::filesystem;

namespace {

/// Deliberately leaked: a plugin library must outlive everything it created, which includes
/// objects destroyed during static destruction.
std::vector<boost::dll::shared_library>& resident_libraries() {
  static auto* libraries = new std::vector<boost::dll::shared_library>();
  return *libraries;
}

const lowbit_plugin_info& handshake(const std::string& path, boost::dll::shared_library& library) {
  if (!library.has(LOWBIT_PLUGIN_ENTRY_SYMBOL)) {
    throw PluginError(path, fmt::format("no entry point \"{}\"; a plugin must define it with "
                                        "LOWBIT_PLUGIN(name, register_function)",
                                        LOWBIT_PLUGIN_ENTRY_SYMBOL));
  }
  auto entry = library.get<const lowbit_plugin_info*()>(LOWBIT_PLUGIN_ENTRY_SYMBOL);
  const lowbit_plugin_info* info = entry();
  if (info == nullptr) throw PluginError(path, "entry point returned no plugin info");
  if (info->api_version != LOWBIT_PLUGIN_API_VERSION) {
    throw PluginError(path, fmt::format("plugin API version {} does not match this lowbit's "
                                        "version {}; rebuild the plugin against this lowbit's SDK",
                                        info->api_version, LOWBIT_PLUGIN_API_VERSION));
  }
  const char* host_build = LOWBIT_BUILD_ID;
  if (info->build_id == nullptr || std::strcmp(info->build_id, host_build) != 0) {
    throw PluginError(path,
                      fmt::format("plugin was built with [{}] but lowbit with [{}]; rebuild "
                                  "the plugin with the same LibTorch and compiler",
                                  info->build_id ? info->build_id : "no build id", host_build));
  }
  if (info->register_components == nullptr) {
    throw PluginError(path, "plugin info has no register_components function");
  }
  return *info;
}

}  // namespace

PluginError::PluginError(const std::string& path, const std::string& reason)
    : std::runtime_error(fmt::format("plugin {}: {}", path, reason)), path_(path) {}

LoadedPlugin PluginLoader::load(const std::string& path) {
  boost::system::error_code error;
  // Boost.DLL reports a missing file as "Bad file descriptor"; say what is wrong instead.
  if (!bfs::is_regular_file(path, error)) throw PluginError(path, "no such file");
  const std::string canonical = bfs::canonical(path).string();
  auto known = std::find_if(loaded_.begin(), loaded_.end(),
                            [&](const LoadedPlugin& plugin) { return plugin.path == canonical; });
  if (known != loaded_.end()) return *known;

  boost::dll::shared_library library;
  library.load(canonical, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local,
               error);
  if (error) {
    // Boost.DLL keeps only a generic error code; the loader's own reason is in dlerror().
    const char* detail = dlerror();
    throw PluginError(path, fmt::format("not a loadable shared library: {}",
                                        detail != nullptr ? detail : error.message()));
  }
  const auto& info = handshake(path, library);

  // Resident from here on, even if registration fails: the exception and anything else the
  // plugin created may still point into its code.
  resident_libraries().push_back(library);
  // Staged, so that a plugin whose registration fails leaves no component behind.
  Registry staged;
  staged.set_origin(canonical);
  try {
    info.register_components(staged);
    registry_.merge(staged);
  } catch (const std::exception& e) {
    throw PluginError(path, fmt::format("registration failed: {}", e.what()));
  }

  loaded_.push_back(LoadedPlugin{canonical, info.name ? info.name : "", sha1_file(canonical)});
  return loaded_.back();
}

std::vector<PluginFailure> PluginLoader::load_directory(const std::string& directory) {
  boost::system::error_code error;
  if (!bfs::is_directory(directory, error)) {
    return {PluginFailure{directory, "plugin folder does not exist"}};
  }
  std::vector<std::string> files;
  for (const auto& entry : bfs::directory_iterator(directory)) {
    if (entry.path().extension() == ".so") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  std::vector<PluginFailure> failures;
  for (const auto& file : files) {
    try {
      load(file);
    } catch (const PluginError& e) {
      failures.push_back(PluginFailure{file, e.what()});
    }
  }
  return failures;
}

std::string PluginLoader::sha1_of(const std::string& origin) const {
  for (const auto& plugin : loaded_) {
    if (plugin.path == origin) return plugin.sha1;
  }
  return "";
}

std::vector<std::string> PluginLoader::search_path(const std::vector<std::string>& extra) {
  std::vector<std::string> folders;
  boost::system::error_code error;
  const auto beside_binary = boost::dll::program_location(error).parent_path().parent_path() /
                             LOWBIT_INSTALL_LIBDIR / "lowbit" / "plugins";
  if (!error && bfs::is_directory(beside_binary, error)) folders.push_back(beside_binary.string());
  if (const char* env = std::getenv("LOWBIT_PLUGIN_PATH")) {
    std::string list(env);
    size_t start = 0;
    while (start <= list.size()) {
      size_t end = list.find(':', start);
      if (end == std::string::npos) end = list.size();
      std::string folder = list.substr(start, end - start);
      if (!folder.empty() && bfs::is_directory(folder, error)) folders.push_back(folder);
      start = end + 1;
    }
  }
  folders.insert(folders.end(), extra.begin(), extra.end());
  return folders;
}

}  // namespace lowbit
