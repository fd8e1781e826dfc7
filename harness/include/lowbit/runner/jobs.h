#pragma once
// Concurrent trials: one sweep split over several `lowbit run` processes that share one
// database (SQLite WAL), each taking its own shard, optionally each pinned to a GPU.

#include <string>
#include <vector>

namespace lowbit {

struct ParallelRunOptions {
  std::string executable;              ///< the lowbit binary to start
  std::vector<std::string> arguments;  ///< the `run` command line without --shard/--jobs
  int jobs = 1;
  std::vector<std::string> gpus;       ///< round-robin CUDA_VISIBLE_DEVICES per job ("" = all)
};

/// Starts the jobs (child i gets `--shard i/jobs`), waits for all, and returns how many failed
/// (exited non-zero or were killed). SIGTERM/SIGINT to this process are passed on to the jobs,
/// and a job gets SIGTERM when this process dies, even by SIGKILL. Throws std::runtime_error if a job cannot be started.
int run_parallel_jobs(const ParallelRunOptions& options);

}  // namespace lowbit
