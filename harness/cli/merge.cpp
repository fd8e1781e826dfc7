// `lowbit merge`: adds shard databases' trials to a database, never twice.

#include "commands.h"

#include <lowbit/results/layout.h>
#include <lowbit/results/merge.h>
#include <lowbit/results/store.h>

#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

namespace lowbit::cli {
namespace {

struct MergeArguments {
  std::string db = kDefaultDatabasePath;
  std::vector<std::string> sources;
};

int command_merge(const MergeArguments& args) {
  ResultStore target(args.db);
  MergeSummary total;
  for (const auto& source_path : args.sources) {
    refuse_self_merge(target, source_path);
    ResultStore source(source_path, StoreAccess::read_only);
    const auto merged = merge_results(target, source);
    fmt::print("{}: {} trials added, {} already there\n", source_path, merged.trials_added,
               merged.trials_present);
    total.trials_added += merged.trials_added;
    total.trials_present += merged.trials_present;
    total.failures_added += merged.failures_added;
  }
  fmt::print("{}: {} trials added, {} already there, {} failed trials recorded\n", args.db,
             total.trials_added, total.trials_present, total.failures_added);
  return 0;
}

}  // namespace

void add_merge(CLI::App& app, Handler& handler) {
  auto* command =
      app.add_subcommand("merge", "add shard databases' trials to a database, without duplicates");
  auto args = std::make_shared<MergeArguments>();
  command->add_option("--db", args->db, "database to merge into (created if absent)")
      ->capture_default_str();
  command->add_option("databases", args->sources, "databases to take trials from")
      ->required()
      ->check(CLI::ExistingFile);
  // Copies rows and weight files only: no plugin is loaded.
  command->callback(
      [&handler, args] { handler = [args](Environment&) { return command_merge(*args); }; });
}

}  // namespace lowbit::cli
