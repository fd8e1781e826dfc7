#pragma once
// Concurrent trials: one sweep split over several `lowbit run` processes that share one
// database (SQLite WAL), each taking its own shard, optionally each pinned to a GPU.

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

/// The `run` command line every job is given (ParallelRunOptions::arguments), before
/// run_parallel_jobs adds its --shard.
struct JobCommandLine {
  std::vector<std::string> plugin_dirs;       ///< the parent's --plugin-dir folders, in order
  std::vector<std::string> experiment_files;  ///< as the parent was given them
  std::string profile;                        ///< "" for files without profiles
  bool reuse = false;                         ///< --reuse
  std::string database;
  std::string device;   ///< "" leaves each experiment's own device
  int64_t threads = 1;  ///< always passed: see threads_per_job
};

/// `[--plugin-dir D]... run FILE... [--profile P] [--reuse] --db DB [--device X] --threads N`.
std::vector<std::string> job_arguments(const JobCommandLine& command);

/// The hardware threads of this machine (at least 1, also when the count is unknown).
int64_t hardware_threads();

/// Intra-op threads per job: `requested` when given (>= 0; 0 means every hardware thread),
/// otherwise the hardware threads shared out among the jobs, at least one each.
int64_t threads_per_job(int64_t requested, int jobs, int64_t hardware_threads);

/// Why `jobs` jobs of `threads` threads each (0: every hardware thread) will run slowly when
/// together they want more than `hardware_threads`, with the --threads that would fit;
/// "" when they fit.
std::string oversubscription_warning(int jobs, int64_t threads, int64_t hardware_threads);

struct ParallelRunOptions {
  std::string executable;              ///< the lowbit binary to start
  std::vector<std::string> arguments;  ///< the `run` command line without --shard/--jobs
  int jobs = 1;
  std::vector<std::string> gpus;  ///< round-robin CUDA_VISIBLE_DEVICES per job ("" = all)
};

/// Starts the jobs (child i gets `--shard i/jobs`), waits for all, and returns how many failed
/// (exited non-zero or were killed). SIGTERM/SIGINT to this process are passed on to the jobs,
/// and a job gets SIGTERM when this process dies, even by SIGKILL. Throws std::runtime_error if a
/// job cannot be started.
int run_parallel_jobs(const ParallelRunOptions& options);

}  // namespace lowbit
