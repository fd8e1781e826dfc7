// The `lowbit` command line: run experiment matrices, list components, render result tables,
// HTML reports and exported trial weights. Each command lives in its own file (commands.h).

#include "commands.h"
#include "environment.h"

#include <lowbit/util/exception_message.h>
#include <lowbit/util/host_memory.h>

#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  lowbit::keep_freed_host_memory();
  lowbit::cli::Handler handler;  // set by the parsed command's callback
  CLI::App app{"lowbit: train and compare low-bitwidth CNNs (quantizers x training strategies)"};
  app.require_subcommand(1);
  std::vector<std::string> plugin_dirs;
  app.add_option("--plugin-dir", plugin_dirs,
                 "extra folder of plugins (repeatable; LOWBIT_PLUGIN_PATH adds more)");
  // In this order in --help.
  lowbit::cli::add_run(app, handler);
  lowbit::cli::add_slurm(app, handler);
  lowbit::cli::add_plugins(app, handler);
  lowbit::cli::add_table(app, handler);
  lowbit::cli::add_bench(app, handler);
  lowbit::cli::add_merge(app, handler);
  lowbit::cli::add_report(app, handler);
  lowbit::cli::add_export(app, handler);
  lowbit::cli::add_verify(app, handler);

  CLI11_PARSE(app, argc, argv);

  try {
    lowbit::cli::Environment env(plugin_dirs);
    return handler(env);
  } catch (const std::exception& e) {
    std::cerr << "lowbit: error: " << lowbit::exception_message(e) << "\n";
    return 1;
  }
}
