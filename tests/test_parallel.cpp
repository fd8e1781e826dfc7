// Splitting a sweep: shards, concurrent jobs sharing one database, Slurm array scripts.

#include <lowbit/results/layout.h>
#include <lowbit/runner/jobs.h>
#include <lowbit/runner/slurm.h>
#include <lowbit/runner/sweep.h>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using Catch::Matchers::Contains;

TEST_CASE("shards are written i/N", "[parallel]") {
  CHECK(lowbit::parse_shard("0/1") == std::pair<int64_t, int64_t>{0, 1});
  CHECK(lowbit::parse_shard("3/4") == std::pair<int64_t, int64_t>{3, 4});
  for (const std::string bad : {"4/4", "-1/4", "1/0", "1", "a/b", "1/2x", "/2", "1/"}) {
    INFO(bad);
    CHECK_THROWS_WITH(lowbit::parse_shard(bad), Contains("i/N"));
  }
}

TEST_CASE("the Slurm script runs shard i of N into its own database", "[parallel]") {
  lowbit::SlurmOptions options;
  options.executable = "/opt/lowbit/bin/lowbit";
  options.experiment = "/data/my exp.json";
  options.shard_folder = "/scratch/shards";
  options.name = "table1";
  options.shards = 8;
  options.cpus_per_task = 4;
  options.partition = "gpu";
  options.time_limit = "02:00:00";
  options.device = "cuda";
  options.plugin_dirs = {"/opt/plugins"};
  const auto script = lowbit::slurm_array_script(options);
  CHECK_THAT(script, Contains("#SBATCH --array=0-7\n"));
  CHECK_THAT(script, Contains("#SBATCH --cpus-per-task=4\n"));
  CHECK_THAT(script, Contains("#SBATCH --partition=gpu\n"));
  CHECK_THAT(script, Contains("#SBATCH --time=02:00:00\n"));
  CHECK_THAT(script, Contains("#SBATCH --output=\"/scratch/shards/table1-shard-%a.log\"\n"));
  CHECK_THAT(script,
             Contains("exec '/opt/lowbit/bin/lowbit' --plugin-dir '/opt/plugins' run "
                      "'/data/my exp.json' --shard \"${SLURM_ARRAY_TASK_ID}/8\" --shard-by trial"));
  CHECK_THAT(
      script,
      Contains(
          "--device cuda --db '/scratch/shards'/'table1-shard-'\"${SLURM_ARRAY_TASK_ID}\"'.db'"));
  CHECK(lowbit::shard_database(options, "3") == "/scratch/shards/table1-shard-3.db");
  CHECK_THAT(script,
             Contains("merge --db results/lowbit.db '/scratch/shards'/'table1-shard-'*.db\n"));
}

TEST_CASE("each job gets the parent's run command line with an explicit thread count",
          "[parallel]") {
  lowbit::JobCommandLine command;
  command.plugin_dirs = {"/opt/plugins", "my plugins"};
  command.experiment_files = {"a.json", "b.json"};
  command.database = "results/x.db";
  command.device = "cuda";
  command.threads = 3;
  CHECK(lowbit::job_arguments(command) ==
        std::vector<std::string>{"--plugin-dir", "/opt/plugins", "--plugin-dir", "my plugins",
                                 "run", "a.json", "b.json", "--db", "results/x.db", "--device",
                                 "cuda", "--threads", "3"});
  // No --device: each experiment keeps its own.
  command.plugin_dirs.clear();
  command.device.clear();
  command.threads = 0;
  CHECK(lowbit::job_arguments(command) == std::vector<std::string>{"run", "a.json", "b.json",
                                                                   "--db", "results/x.db",
                                                                   "--threads", "0"});
  CHECK(std::string(lowbit::kDefaultDatabasePath) == "results/lowbit.db");
}

TEST_CASE("jobs share the hardware threads unless --threads is given", "[parallel]") {
  CHECK(lowbit::threads_per_job(3, 4, 8) == 3);
  CHECK(lowbit::threads_per_job(0, 4, 8) == 0);  // 0 asks for every hardware thread
  CHECK(lowbit::threads_per_job(-1, 4, 8) == 2);
  CHECK(lowbit::threads_per_job(-1, 3, 8) == 2);
  CHECK(lowbit::threads_per_job(-1, 3, 2) == 1);  // never 0, which would mean all of them
  CHECK(lowbit::threads_per_job(-1, 1, 16) == 16);
  CHECK(lowbit::hardware_threads() >= 1);
}

TEST_CASE("more job threads than hardware threads is warned about, with a --threads that fits",
          "[parallel]") {
  CHECK(lowbit::oversubscription_warning(2, 1, 2).empty());
  CHECK(lowbit::oversubscription_warning(2, 2, 4).empty());
  CHECK(lowbit::oversubscription_warning(3, 1, 2) ==
        "3 jobs x 1 threads > 2 hardware threads; CPU trials will oversubscribe the cores and run "
        "several times slower (use --threads 1)");
  // --threads 0 gives every job every hardware thread.
  CHECK_THAT(lowbit::oversubscription_warning(2, 0, 4),
             Contains("2 jobs x 4 threads > 4 hardware threads") && Contains("(use --threads 2)"));
  CHECK_THAT(lowbit::oversubscription_warning(4, 3, 8),
             Contains("4 jobs x 3 threads > 8 hardware threads") && Contains("(use --threads 2)"));
}
