#include <lowbit/plugins/plugin_loader.h>
#include <lowbit/sdk/abi.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

using Catch::Matchers::Contains;

namespace {
const std::string fixtures = LOWBIT_FIXTURE_DIR;
const std::string plugin_dir = LOWBIT_PLUGIN_BUILD_DIR;

std::string load_error(const std::string& path) {
  lowbit::Registry registry;
  lowbit::PluginLoader loader(registry);
  try {
    loader.load(path);
  } catch (const lowbit::PluginError& e) {
    CHECK(registry.components().empty());
    return e.what();
  }
  FAIL("loading " << path << " should have failed");
  return "";
}
}  // namespace

TEST_CASE("a built plugin loads, registers its quantizer and records its hash", "[plugins]") {
  lowbit::Registry registry;
  lowbit::PluginLoader loader(registry);
  const auto& plugin = loader.load(plugin_dir + "/liblowbit_dorefa.so");
  CHECK(plugin.name == "dorefa");
  CHECK(plugin.sha1.size() == 40);
  REQUIRE(registry.contains(lowbit::ComponentKind::quantizer, "dorefa"));
  CHECK(registry.info(lowbit::ComponentKind::quantizer, "dorefa").origin == plugin.path);
  CHECK(loader.sha1_of(plugin.path) == plugin.sha1);
  // Loading the same file again is a no-op, not a duplicate registration.
  CHECK_NOTHROW(loader.load(plugin_dir + "/liblowbit_dorefa.so"));
  CHECK(loader.loaded().size() == 1);
  // What load returned stays valid after more loads grow the loader's list.
  for (const auto* other : {"lqnet", "bireal", "groupnet", "kd", "stochastic"}) {
    loader.load(plugin_dir + "/liblowbit_" + other + ".so");
  }
  CHECK(loader.loaded().size() == 6);
  CHECK(plugin.name == "dorefa");
  CHECK(plugin.path == loader.loaded().front().path);
}

TEST_CASE("a plugin of another API version is refused naming both versions", "[plugins]") {
  auto message = load_error(fixtures + "/wrong_api_version.so");
  CHECK_THAT(message, Contains("wrong_api_version.so"));
  CHECK_THAT(message,
             Contains("plugin API version " + std::to_string(LOWBIT_PLUGIN_API_VERSION + 41)));
  CHECK_THAT(message, Contains("version " + std::to_string(LOWBIT_PLUGIN_API_VERSION)));
}

TEST_CASE("a plugin built against another LibTorch is refused naming both builds", "[plugins]") {
  auto message = load_error(fixtures + "/wrong_build_id.so");
  CHECK_THAT(message, Contains("torch=0.4.0;compiler=gcc-5;cxx11abi=0"));
  CHECK_THAT(message, Contains(LOWBIT_BUILD_ID));
}

TEST_CASE("a library without the entry point is refused", "[plugins]") {
  auto message = load_error(fixtures + "/no_entry_point.so");
  CHECK_THAT(message, Contains("no_entry_point.so"));
  CHECK_THAT(message, Contains("no entry point \"lowbit_plugin_entry\""));
}

TEST_CASE("a file that is not a shared library is refused", "[plugins]") {
  auto message = load_error(fixtures + "/not_a_library.so");
  CHECK_THAT(message, Contains("not_a_library.so"));
  CHECK_THAT(message, Contains("not a loadable shared library"));
}

TEST_CASE("a missing file is refused as missing, not as a bad descriptor", "[plugins]") {
  auto message = load_error(fixtures + "/does_not_exist.so");
  CHECK_THAT(message, Contains("does_not_exist.so"));
  CHECK_THAT(message, Contains("no such file"));
}

TEST_CASE("a plugin whose registration fails leaves nothing registered", "[plugins]") {
  auto message = load_error(fixtures + "/throws_on_register.so");
  CHECK_THAT(message, Contains("registration failed"));
  CHECK_THAT(message, Contains("fixture_model"));
}

TEST_CASE("a folder with broken plugins loads the good ones and reports the rest", "[plugins]") {
  lowbit::Registry registry;
  lowbit::PluginLoader loader(registry);
  auto failures = loader.load_directory(fixtures);
  CHECK(failures.size() == 5);
  CHECK(loader.loaded().empty());
  CHECK(loader.load_directory(fixtures + "/no_such_folder").size() == 1);
}

TEST_CASE("LOWBIT_PLUGIN_PATH and --plugin-dir extend the search path", "[plugins]") {
  ::setenv("LOWBIT_PLUGIN_PATH", (fixtures + ":/definitely/not/there").c_str(), 1);
  auto path = lowbit::PluginLoader::search_path({"/extra/dir"});
  ::unsetenv("LOWBIT_PLUGIN_PATH");
  REQUIRE(path.size() >= 2);
  CHECK(path[path.size() - 2] == fixtures);
  CHECK(path.back() == "/extra/dir");
}
