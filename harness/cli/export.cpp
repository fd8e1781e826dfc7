// `lowbit export`: a trained trial's tensors (quantized weights with their integer codes) in a
// file torch.load reads.

#include "commands.h"

#include <lowbit/export/export.h>
#include <lowbit/results/layout.h>
#include <lowbit/results/store.h>

#include <fmt/format.h>

#include <memory>
#include <string>

namespace lowbit::cli {
namespace {

struct ExportArguments {
  std::string db = kDefaultDatabasePath;
  RunSelector selector;
  int64_t trial = 0;
  std::string output;
};

int command_export(Environment& env, const ExportArguments& args) {
  // The run's network is rebuilt to name its tensors, so its quantizer's plugin must be loaded;
  // others may have failed.
  auto& components = env.components();
  ResultStore store(args.db, StoreAccess::read_only);
  const auto without_codes =
      export_trial(components.registry, store, args.selector, args.trial, args.output);
  fmt::print("wrote {}\n", args.output);
  for (const auto& layer : without_codes) fmt::print("no integer codes: {}\n", layer);
  return 0;
}

}  // namespace

void add_export(CLI::App& app, Handler& handler) {
  auto* command = app.add_subcommand(
      "export",
      "write a trained trial's tensors (with quantized weights' integer codes) for torch.load");
  auto args = std::make_shared<ExportArguments>();
  command->add_option("--db", args->db, "results database")
      ->capture_default_str()
      ->check(CLI::ExistingFile);
  command->add_option("--run", args->selector.hash_prefix, "run hash (or a unique prefix)");
  command->add_option("--experiment", args->selector.experiment,
                      "select the run by experiment name");
  command->add_option("--model", args->selector.model, "select the run by model");
  command->add_option("--method", args->selector.method, "select the run by method, e.g. dorefa");
  command->add_option("--precision", args->selector.precision,
                      "select the run by precision, e.g. 2W2A");
  command->add_option("--trial", args->trial, "trial index")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  command->add_option("-o,--output", args->output, "file to write (.pt)")->required();
  command->callback([&handler, args] {
    handler = [args](Environment& env) { return command_export(env, *args); };
  });
}

}  // namespace lowbit::cli
