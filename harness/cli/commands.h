#pragma once
// The `lowbit` subcommands, one file each. add_<command> adds the subcommand and its options to
// the app; when the command line names it, its parse callback sets `handler` to the command's
// work. main() parses, then runs the handler inside its one error report.

#include "environment.h"

#include <CLI/CLI.hpp>

#include <functional>

namespace lowbit::cli {

/// A parsed command's work. Returns the exit code (0 done, 1 refused, 2 some trials or jobs
/// failed, or did not verify); errors are thrown, and main() prints them and exits with 1.
using Handler = std::function<int(Environment&)>;

void add_run(CLI::App& app, Handler& handler);
void add_slurm(CLI::App& app, Handler& handler);
void add_plugins(CLI::App& app, Handler& handler);
void add_table(CLI::App& app, Handler& handler);
void add_bench(CLI::App& app, Handler& handler);
void add_merge(CLI::App& app, Handler& handler);
void add_report(CLI::App& app, Handler& handler);
void add_export(CLI::App& app, Handler& handler);
void add_verify(CLI::App& app, Handler& handler);

}  // namespace lowbit::cli
