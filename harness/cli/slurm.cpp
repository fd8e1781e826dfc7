// `lowbit slurm`: writes a Slurm job-array script whose tasks train shards of an experiment into
// databases of their own, to be combined with `lowbit merge`.

#include "commands.h"

#include <lowbit/experiment/experiment.h>
#include <lowbit/results/layout.h>
#include <lowbit/runner/slurm.h>
#include <lowbit/util/atomic_file.h>

#include <boost/filesystem.hpp>
#include <fmt/format.h>

#include <memory>
#include <string>

namespace lowbit::cli {
namespace {

struct SlurmArguments {
  std::string file;
  std::string output;  ///< "" = <shard-folder>/<name>.sbatch
  SlurmOptions options;
};

int command_slurm(Environment& env, const SlurmArguments& args) {
  auto& components = env.complete_components();
  const auto experiment = load_experiment(args.file, components.registry, args.options.profile);
  // The tasks run on other nodes, from other folders: every path they get is absolute.
  SlurmOptions options = args.options;
  options.executable = lowbit_executable();
  options.experiment = boost::filesystem::canonical(args.file).string();
  options.shard_folder =
      boost::filesystem::absolute(options.shard_folder).lexically_normal().string();
  options.name = experiment.name;
  for (const auto& folder : env.plugin_dirs()) {
    options.plugin_dirs.push_back(boost::filesystem::canonical(folder).string());
  }
  const std::string output =
      args.output.empty() ? options.shard_folder + "/" + experiment.name + ".sbatch" : args.output;
  write_text_atomically(output, slurm_array_script(options));
  fmt::print(
      "wrote {} ({} array tasks, {} trials in all)\nsubmit:  sbatch {}\nthen:    {} merge --db {} "
      "{}\n",
      output, options.shards, experiment.runs.size() * experiment.trials, output,
      options.executable, kDefaultDatabasePath, shard_database(options, "*"));
  if (options.shards > experiment.trials) {
    fmt::print(
        "note: task i trains trial indices i, i+{0}, ... of every run (a quantized trial "
        "stays with the 32W32A trial it starts from); with {1} trials, {2} of the {0} "
        "tasks have nothing to train\n",
        options.shards, experiment.trials, options.shards - experiment.trials);
  }
  return 0;
}

}  // namespace

void add_slurm(CLI::App& app, Handler& handler) {
  auto* command = app.add_subcommand("slurm", "write a Slurm job-array script for an experiment");
  auto args = std::make_shared<SlurmArguments>();
  args->options.shard_folder = "results/shards";
  command->add_option("experiment", args->file, "experiment JSON file")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("--profile", args->options.profile,
                      "the file's profile (scale) to run, when it has \"profiles\"");
  command->add_option("--shards", args->options.shards, "array tasks (each its own database)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  command->add_option("--shard-folder", args->options.shard_folder, "where the shard databases go")
      ->capture_default_str();
  command->add_option("--cpus-per-task", args->options.cpus_per_task, "CPUs (and threads) per task")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--partition", args->options.partition, "partition (default: the cluster's)");
  command->add_option("--time", args->options.time_limit, "time limit per task, e.g. 04:00:00");
  command->add_option("--device", args->options.device, "auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  command->add_option("-o,--output", args->output,
                      "script file (default: <shard-folder>/<name>.sbatch)");
  command->callback([&handler, args] {
    handler = [args](Environment& env) { return command_slurm(env, *args); };
  });
}

}  // namespace lowbit::cli
