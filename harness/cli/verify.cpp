// `lowbit verify`: re-trains stored trials of an experiment in a scratch database and checks that
// they come out as recorded: bit for bit on the recorded device, threads, LibTorch and CPU, else
// within the run's spread.

#include "commands.h"

#include <lowbit/results/layout.h>
#include <lowbit/results/store.h>
#include <lowbit/runner/verify.h>

#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <string>

namespace lowbit::cli {
namespace {

struct VerifyArguments {
  std::string experiment;
  std::string db = kDefaultDatabasePath;
  int64_t trials = 1;
  VerifyOptions options;
};

int command_verify(Environment& env, const VerifyArguments& args) {
  auto& components = env.complete_components();
  ResultStore stored(args.db, StoreAccess::read_only);
  const auto experiment = stored_experiment(stored, args.experiment, components.registry);
  const auto selection = select_trials(stored, experiment, args.trials);
  const auto count = static_cast<int64_t>(selection.trials.size());
  fmt::print("{}: re-training {} of its {} finished trials from {} in a scratch database{}\n",
             experiment.name, count, selection.finished_trials, args.db,
             count < args.trials ? fmt::format(" (--trials {} asked for more)", args.trials)
                                 : std::string());
  if (selection.runs_not_resolved > 0) {
    fmt::print(
        "note: {} stored run{} with finished trials {} not among the runs the stored spec "
        "resolves to now (an older version of the experiment?): not verified\n",
        selection.runs_not_resolved, selection.runs_not_resolved == 1 ? "" : "s",
        selection.runs_not_resolved == 1 ? "is" : "are");
  }
  std::cout.flush();
  const auto report = verify_trials(components.registry, components.plugins, stored, experiment,
                                    selection.trials, args.options);
  fmt::print("\n");
  for (const auto& verdict : report.verdicts) fmt::print("{}", format_verdict(verdict));
  const int64_t mismatches = report.mismatches();
  fmt::print("\n{}: {} of {} trials PASS, {} MISMATCH ({} trained in the scratch database)\n",
             experiment.name, count - mismatches, count, mismatches, report.trials_trained);
  // As `run` says 2 when trials failed: 1 is kept for what the command refused (main's errors).
  return mismatches == 0 ? 0 : 2;
}

}  // namespace

void add_verify(CLI::App& app, Handler& handler) {
  auto* command = app.add_subcommand(
      "verify",
      "re-train stored trials in a scratch database and compare them with their records: bit for "
      "bit on the recorded device, threads, LibTorch and CPU, else within the run's spread");
  auto args = std::make_shared<VerifyArguments>();
  args->options.progress = &std::cout;
  command
      ->add_option("experiment", args->experiment,
                   "the experiment's name in the database; its stored spec (the file as it was "
                   "read when it ran) is parsed again, the file on disk is not read")
      ->required();
  command->add_option("--db", args->db, "results database (only read)")
      ->capture_default_str()
      ->check(CLI::ExistingFile);
  command
      ->add_option("--trials", args->trials,
                   "re-train the first N finished trials in sweep order (runs in the "
                   "experiment's order, 32W32A sources first; trial indices ascending)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command
      ->add_option("--threads", args->options.threads,
                   "intra-op threads (default: the count each trial recorded, so that bit for "
                   "bit is possible; 0: every hardware thread)")
      ->check(CLI::NonNegativeNumber);
  command
      ->add_option("--device", args->options.device,
                   "device (default: the one each trial recorded; a CUDA trial asks for auto)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  command->footer(
      "Exit code: 0 when every trial passes, 2 on any mismatch, 1 when it cannot verify (no such "
      "experiment, nothing finished, bad input).");
  command->callback([&handler, args] {
    handler = [args](Environment& env) { return command_verify(env, *args); };
  });
}

}  // namespace lowbit::cli
