// `lowbit run`: trains experiment matrices into the database, skipping finished trials, in this
// process or split over --jobs processes that share the database.

#include "commands.h"

#include <lowbit/experiment/experiment.h>
#include <lowbit/results/layout.h>
#include <lowbit/results/store.h>
#include <lowbit/results/table.h>
#include <lowbit/runner/jobs.h>
#include <lowbit/runner/sweep.h>

#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace lowbit::cli {
namespace {

struct RunArguments {
  std::vector<std::string> files;
  std::string profile;
  std::string db = kDefaultDatabasePath;
  SweepOptions sweep;
  bool dry_run = false;
  std::string shard = "0/1";
  std::string shard_by = "position";
  int jobs = 1;
  std::vector<std::string> gpus;
};

/// Every file is read and validated before anything trains.
std::vector<Experiment> load_experiments(const RunArguments& args, const Registry& registry) {
  std::vector<Experiment> experiments;
  for (const auto& file : args.files)
    experiments.push_back(load_experiment(file, registry, args.profile));
  return experiments;
}

void print_experiment_table(ResultStore& store, const std::string& experiment) {
  fmt::print("{}\n", render_table(store.summaries(experiment), TableFormat::markdown));
}

void print_skipped(const Experiment& experiment) {
  for (const auto& skipped : experiment.skipped) {
    fmt::print("  skipped {} {} {}: {}\n", skipped.model, skipped.method, skipped.precision,
               skipped.reason);
  }
}

void print_plan(const Experiment& experiment) {
  fmt::print("{} ({}{}): {} runs x {} trials\n", experiment.name, experiment.file,
             experiment.profile.empty() ? "" : ", profile " + experiment.profile,
             experiment.runs.size(), experiment.trials);
  for (const auto& run : experiment.runs) {
    std::string start;
    if (run.init == InitKind::full_precision) {
      start = "  from run " + experiment.runs[run.full_precision_source].record.hash.substr(0, 12);
    } else if (run.init == InitKind::checkpoint) {
      start = "  from the checkpoint";
    }
    fmt::print("  {:<12} {:<20} {:<7} run {}{}\n", run.model, run.record.method,
               precision_label(run.record.weight_bits, run.record.activation_bits),
               run.record.hash.substr(0, 12), start);
  }
  print_skipped(experiment);
}

/// The sweep in this process (or its shard of it); a dry run only lists the runs.
int run_here(Components& components, const RunArguments& args) {
  const auto experiments = load_experiments(args, components.registry);
  if (args.dry_run) {
    for (const auto& experiment : experiments) print_plan(experiment);
    return 0;
  }
  ResultStore store(args.db);
  SweepRunner runner(components.registry, components.plugins, store);
  int64_t failed = 0;
  for (const auto& experiment : experiments) {
    print_skipped(experiment);
    auto summary = runner.run(experiment, args.sweep);
    failed += summary.trials_failed;
    fmt::print(
        "\n{}: {} trials run, {} already finished, {} failed{}{}{}; results in {}\n\n",
        experiment.name, summary.trials_run, summary.trials_skipped, summary.trials_failed,
        summary.trials_reused > 0
            ? fmt::format(", {} reused from other experiments", summary.trials_reused)
            : std::string(),
        summary.trials_elsewhere > 0
            ? fmt::format(", {} left to other shards", summary.trials_elsewhere)
            : std::string(),
        summary.trials_claimed_elsewhere > 0
            ? fmt::format(", {} being trained by other processes", summary.trials_claimed_elsewhere)
            : std::string(),
        store.path());
    // A shard's table would show only its own share of the trials.
    if (args.sweep.shard_count == 1) print_experiment_table(store, experiment.name);
  }
  return failed == 0 ? 0 : 2;
}

/// The sweep split over --jobs processes sharing the database; the tables once all are done.
int run_in_jobs(Environment& env, Components& components, const RunArguments& args) {
  const auto experiments = load_experiments(args, components.registry);
  const int64_t cores = hardware_threads();
  JobCommandLine command;
  command.plugin_dirs = env.plugin_dirs();
  command.experiment_files = args.files;
  command.profile = args.profile;
  command.reuse = args.sweep.reuse_other_experiments;
  command.database = args.db;
  command.device = args.sweep.device;
  command.threads = threads_per_job(args.sweep.threads, args.jobs, cores);
  ParallelRunOptions parallel;
  parallel.executable = lowbit_executable();
  parallel.arguments = job_arguments(command);
  parallel.jobs = args.jobs;
  parallel.gpus = args.gpus;
  const auto warning = oversubscription_warning(args.jobs, command.threads, cores);
  if (!warning.empty()) fmt::print(stderr, "lowbit: warning: {}\n", warning);
  const int failed = run_parallel_jobs(parallel);
  ResultStore store(args.db);
  for (const auto& experiment : experiments) print_experiment_table(store, experiment.name);
  if (failed > 0) fmt::print(stderr, "lowbit: {} of {} jobs failed\n", failed, args.jobs);
  return failed == 0 ? 0 : 2;
}

int command_run(Environment& env, RunArguments& args) {
  // Loaded before the shard is read, so a plugin folder that cannot be searched is the error
  // reported first, as it always was.
  env.components();
  std::tie(args.sweep.shard_index, args.sweep.shard_count) = parse_shard(args.shard);
  args.sweep.shard_by = args.shard_by == "trial" ? ShardBy::trial_index : ShardBy::position;
  const bool in_jobs = args.jobs > 1 && !args.dry_run;
  if (in_jobs && args.sweep.shard_count > 1) {
    throw std::invalid_argument("--jobs and --shard do not combine");
  }
  auto& components = env.complete_components();
  return in_jobs ? run_in_jobs(env, components, args) : run_here(components, args);
}

}  // namespace

void add_run(CLI::App& app, Handler& handler) {
  auto* command = app.add_subcommand("run", "run experiment matrices, skipping finished trials");
  auto args = std::make_shared<RunArguments>();
  args->sweep.progress = &std::cout;
  command->add_option("experiments", args->files, "experiment JSON files")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("--profile", args->profile,
                      "the scale to run, for files with \"profiles\" (e.g. paper, cpu)");
  command->add_option("--db", args->db, "results database")->capture_default_str();
  command->add_flag("--reuse", args->sweep.reuse_other_experiments,
                    "record a trial finished by another experiment of the database under the "
                    "same run hash, with the same plugin files and LibTorch, instead of "
                    "training it again");
  command->add_option("--device", args->sweep.device, "override the experiment's device")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  command
      ->add_option("--threads", args->sweep.threads, "override the experiment's intra-op threads")
      ->check(CLI::NonNegativeNumber);
  command->add_flag("--dry-run", args->dry_run, "validate and list the runs without training");
  command->add_option("--shard", args->shard,
                      "train only shard i of N of the sweep's trials (\"i/N\")");
  command
      ->add_option("--shard-by", args->shard_by,
                   "how trials are dealt to shards: position (even shares, shards on one database) "
                   "or trial (trial index t of every run to shard t mod N: shards with databases "
                   "of their own, as Slurm's)")
      ->check(CLI::IsMember({"position", "trial"}))
      ->capture_default_str();
  command
      ->add_option("--jobs", args->jobs,
                   "run N trials at once, in N processes sharing the database")
      ->check(CLI::Range(1, 1024));
  command->add_option("--gpus", args->gpus, "GPU ids the jobs are spread over (round robin)")
      ->delimiter(',');
  command->callback(
      [&handler, args] { handler = [args](Environment& env) { return command_run(env, *args); }; });
}

}  // namespace lowbit::cli
