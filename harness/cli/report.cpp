// `lowbit report`: a self-contained HTML report (tables, method comparisons, training curves)
// from the database.

#include "commands.h"

#include <lowbit/report/report.h>
#include <lowbit/results/layout.h>
#include <lowbit/results/store.h>

#include <fmt/format.h>

#include <memory>
#include <string>

namespace lowbit::cli {
namespace {

struct ReportArguments {
  std::string db = kDefaultDatabasePath;
  std::string experiment;  ///< "" = all
  std::string output = "results/report.html";
};

int command_report(const ReportArguments& args) {
  ResultStore store(args.db, StoreAccess::read_only);
  ReportOptions options;
  options.experiment = args.experiment;
  if (!args.experiment.empty()) options.title = "lowbit results: " + args.experiment;
  write_report(store, args.output, options);
  fmt::print("wrote {}\n", args.output);
  return 0;
}

}  // namespace

void add_report(CLI::App& app, Handler& handler) {
  auto* command = app.add_subcommand(
      "report", "write a self-contained HTML report (tables, method comparisons, curves)");
  auto args = std::make_shared<ReportArguments>();
  command->add_option("--db", args->db, "results database")
      ->capture_default_str()
      ->check(CLI::ExistingFile);
  command->add_option("--experiment", args->experiment, "only this experiment (default: all)");
  command->add_option("-o,--output", args->output, "HTML file to write")->capture_default_str();
  // Reads the database only: no plugin is loaded.
  command->callback(
      [&handler, args] { handler = [args](Environment&) { return command_report(*args); }; });
}

}  // namespace lowbit::cli
