#include <lowbit/runner/slurm.h>

#include <lowbit/experiment/experiment.h>
#include <lowbit/results/layout.h>
#include <lowbit/sdk/json_reader.h>

#include <fmt/format.h>

#include <regex>
#include <stdexcept>

namespace lowbit {
namespace {

/// Single-quoted for the shell, so paths with spaces or quotes survive.
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// #SBATCH lines are read by sbatch, not by a shell: a value there must stay on its line and
/// inside its double quotes.
std::string directive_value(const std::string& value, const std::string& what) {
  if (has_control_characters(value) || value.find('"') != std::string::npos ||
      value.find('\\') != std::string::npos) {
    throw std::invalid_argument(fmt::format(
        "{} {}: control characters, quotes and backslashes cannot go into an #SBATCH line", what,
        excerpt(value)));
  }
  return "\"" + value + "\"";
}

void require_matching(const std::string& value, const std::regex& pattern, const std::string& what,
                      const std::string& allowed) {
  if (!value.empty() && !std::regex_match(value, pattern)) {
    throw std::invalid_argument(
        fmt::format("bad {} {} (allowed: {})", what, excerpt(value), allowed));
  }
}

void validate(const SlurmOptions& options) {
  if (!is_safe_name(options.name)) {
    throw std::invalid_argument(
        fmt::format("bad experiment name {} (allowed: {})", excerpt(options.name), kSafeNameRule));
  }
  require_matching(options.partition, std::regex("^[A-Za-z0-9_.,-]+$"), "partition",
                   "letters, digits and _ . , -");
  require_matching(options.time_limit, std::regex("^[0-9:-]+$"), "time limit",
                   "Slurm times such as 04:00:00 or 1-12:00:00");
  if (!options.profile.empty() && !is_safe_name(options.profile)) {
    throw std::invalid_argument(
        fmt::format("bad profile name {} (allowed: {})", excerpt(options.profile), kSafeNameRule));
  }
  require_matching(options.device, std::regex("^(auto|cpu|cuda)$"), "device", "auto, cpu, cuda");
  for (const auto* path : {&options.executable, &options.experiment, &options.shard_folder}) {
    if (has_control_characters(*path)) {
      throw std::invalid_argument(fmt::format("path {} has control characters", excerpt(*path)));
    }
  }
}

}  // namespace

std::string shard_database(const SlurmOptions& options, const std::string& index) {
  return fmt::format("{}/{}-shard-{}.db", options.shard_folder, options.name, index);
}

std::string slurm_array_script(const SlurmOptions& options) {
  validate(options);
  std::string script = "#!/bin/bash\n";
  script += fmt::format("#SBATCH --job-name=lowbit-{}\n", options.name);
  script += fmt::format("#SBATCH --array=0-{}\n", options.shards - 1);
  script += fmt::format("#SBATCH --cpus-per-task={}\n", options.cpus_per_task);
  script += fmt::format(
      "#SBATCH --output={}\n",
      directive_value(options.shard_folder + "/" + options.name + "-shard-%a.log", "shard folder"));
  if (!options.partition.empty())
    script += fmt::format("#SBATCH --partition={}\n", options.partition);
  if (!options.time_limit.empty()) script += fmt::format("#SBATCH --time={}\n", options.time_limit);
  script +=
      "# Written by `lowbit slurm`. Task i trains shard i of the sweep into its own database:\n";
  script += "# trial indices i, i+N, ... of every run, so that a quantized trial and the 32W32A\n";
  script += "# trial it starts from are in one database;\n";
  script += "# combine them afterwards with:\n";
  script +=
      fmt::format("#   {} merge --db {} {}\n", quoted(options.executable), kDefaultDatabasePath,
                  quoted(options.shard_folder) + "/" + quoted(options.name + "-shard-") + "*.db");
  script += "set -euo pipefail\n";
  script += fmt::format("mkdir -p {}\n", quoted(options.shard_folder));
  std::string plugin_arguments;
  for (const auto& folder : options.plugin_dirs)
    plugin_arguments += " --plugin-dir " + quoted(folder);
  const auto profile_argument =
      options.profile.empty() ? std::string() : " --profile " + quoted(options.profile);
  script += fmt::format(
      "exec {}{} run {}{} --shard \"${{SLURM_ARRAY_TASK_ID}}/{}\" --shard-by trial --threads "
      "\"${{SLURM_CPUS_PER_TASK:-{}}}\" "
      "--device {} --db {}\n",
      quoted(options.executable), plugin_arguments, quoted(options.experiment), profile_argument,
      options.shards, options.cpus_per_task, options.device,
      quoted(options.shard_folder) + "/" + quoted(options.name + "-shard-") +
          "\"${SLURM_ARRAY_TASK_ID}\"" + quoted(".db"));
  return script;
}

}  // namespace lowbit
