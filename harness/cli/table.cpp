// `lowbit table`: result tables (markdown, LaTeX, CSV) rendered from the database.

#include "commands.h"

#include <lowbit/results/layout.h>
#include <lowbit/results/paired.h>
#include <lowbit/results/store.h>
#include <lowbit/results/table.h>
#include <lowbit/util/atomic_file.h>

#include <fmt/format.h>

#include <memory>
#include <string>

namespace lowbit::cli {
namespace {

struct TableArguments {
  std::string db = kDefaultDatabasePath;
  std::string experiment;  ///< "" = all
  std::string format = "markdown";
  std::string output;  ///< "" = standard output
  TableOptions options;
};

int command_table(const TableArguments& args) {
  ResultStore store(args.db, StoreAccess::read_only);
  store.require_experiment(args.experiment);
  auto summaries = store.summaries(args.experiment);
  if (!args.options.reference_method.empty()) {
    add_method_differences(store, summaries, args.options.reference_method);
  } else if (args.options.vs_baseline) {
    add_baseline_differences(store, summaries);
  }
  auto text = render_table(summaries, parse_table_format(args.format), args.options);
  if (args.output.empty()) {
    fmt::print("{}\n", text);
  } else {
    write_text_atomically(args.output, text + "\n");
    fmt::print("wrote {}\n", args.output);
  }
  return 0;
}

}  // namespace

void add_table(CLI::App& app, Handler& handler) {
  auto* command = app.add_subcommand("table", "render result tables from the database");
  auto args = std::make_shared<TableArguments>();
  command->add_option("--db", args->db, "results database")
      ->capture_default_str()
      ->check(CLI::ExistingFile);
  command->add_option("--experiment", args->experiment, "only this experiment (default: all)");
  command->add_option("--format", args->format, "table format")
      ->check(CLI::IsMember({"markdown", "md", "latex", "tex", "csv"}))
      ->capture_default_str();
  command->add_option("-o,--output", args->output, "write to this file instead of standard output");
  command->add_flag(
      "--strategy-columns", args->options.strategy_columns,
      "paper-style columns: Baseline, +TS, +PP, +SP+KD, ... under each model and quantizer");
  command->add_flag("--vs-baseline", args->options.vs_baseline,
                    "runs with strategies: difference to their baseline, paired by trial, with a "
                    "95% t-interval (marked when it excludes 0)");
  command
      ->add_option("--vs", args->options.reference_method,
                   "every run: difference to the run of this method (e.g. \"dorefa+KD(fixed)\") "
                   "with the same model and precision, paired by trial, with a 95% t-interval")
      ->excludes("--vs-baseline");
  command->add_flag("--show-cost", args->options.show_cost,
                    "a Cost row under each precision: mean epochs trained and training images seen "
                    "per trial");
  // Reads the database only: no plugin is loaded.
  command->callback(
      [&handler, args] { handler = [args](Environment&) { return command_table(*args); }; });
}

}  // namespace lowbit::cli
