#include <lowbit/runner/slurm.h>

#include <fmt/format.h>

namespace lowbit {
namespace {

/// Single-quoted for the shell, so paths with spaces or quotes survive.
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string shard_database(const SlurmOptions& options, const std::string& index) {
  return fmt::format("{}/{}-shard-{}.db", options.shard_folder, options.name, index);
}

std::string slurm_array_script(const SlurmOptions& options) {
  std::string script = "#!/bin/bash\n";
  script += fmt::format("#SBATCH --job-name=lowbit-{}\n", options.name);
  script += fmt::format("#SBATCH --array=0-{}\n", options.shards - 1);
  script += fmt::format("#SBATCH --cpus-per-task={}\n", options.cpus_per_task);
  script += fmt::format("#SBATCH --output={}/{}-shard-%a.log\n", options.shard_folder, options.name);
  if (!options.partition.empty()) script += fmt::format("#SBATCH --partition={}\n", options.partition);
  if (!options.time_limit.empty()) script += fmt::format("#SBATCH --time={}\n", options.time_limit);
  script += "# Written by `lowbit slurm`. Task i trains shard i of the sweep into its own database;\n";
  script += "# combine them afterwards with:\n";
  script += fmt::format("#   {} merge --db results/lowbit.db {}\n", options.executable,
                        shard_database(options, "*"));
  script += "set -euo pipefail\n";
  script += fmt::format("mkdir -p {}\n", quoted(options.shard_folder));
  std::string plugin_arguments;
  for (const auto& folder : options.plugin_dirs) plugin_arguments += " --plugin-dir " + quoted(folder);
  script += fmt::format(
      "exec {}{} run {} --shard \"${{SLURM_ARRAY_TASK_ID}}/{}\" --threads \"${{SLURM_CPUS_PER_TASK:-{}}}\" "
      "--device {} --db {}\n",
      quoted(options.executable), plugin_arguments, quoted(options.experiment), options.shards, options.cpus_per_task,
      options.device, quoted(options.shard_folder) + "/" +
                          quoted(options.name + "-shard-") + "\"${SLURM_ARRAY_TASK_ID}\"" +
                          quoted(".db"));
  return script;
}

}  // namespace lowbit
