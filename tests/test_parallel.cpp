// Splitting a sweep: shards, concurrent jobs sharing one database, Slurm array scripts.

#include <lowbit/runner/slurm.h>
#include <lowbit/runner/sweep.h>

#include <catch2/catch.hpp>

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
  CHECK_THAT(script, Contains("exec '/opt/lowbit/bin/lowbit' --plugin-dir '/opt/plugins' run "
                              "'/data/my exp.json' --shard \"${SLURM_ARRAY_TASK_ID}/8\" --shard-by trial"));
  CHECK_THAT(script, Contains("--device cuda --db '/scratch/shards'/'table1-shard-'\"${SLURM_ARRAY_TASK_ID}\"'.db'"));
  CHECK(lowbit::shard_database(options, "3") == "/scratch/shards/table1-shard-3.db");
}
