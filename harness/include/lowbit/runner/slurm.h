#pragma once
// Sweeps on a Slurm cluster: a job-array script whose task i runs shard i of the sweep into its
// own database; `lowbit merge` then combines the shards.

#include <string>
#include <vector>

namespace lowbit {

struct SlurmOptions {
  std::string executable;    ///< absolute path of lowbit on the cluster's nodes
  std::string experiment;    ///< absolute path of the experiment file
  std::string profile;       ///< the file's profile ("" for a file without profiles)
  std::string shard_folder;  ///< where task i writes <name>-shard-<i>.db
  std::string name;          ///< experiment name (job and file names)
  int shards = 1;
  int cpus_per_task = 2;
  std::string partition;   ///< "" = the cluster's default
  std::string time_limit;  ///< e.g. "04:00:00"; "" = the partition's default
  std::string device = "auto";
  std::vector<std::string> plugin_dirs;  ///< absolute --plugin-dir folders to pass on
};

/// The sbatch script (a job array of `shards` tasks).
std::string slurm_array_script(const SlurmOptions& options);

/// The database file of one shard.
std::string shard_database(const SlurmOptions& options, const std::string& index);

}  // namespace lowbit
