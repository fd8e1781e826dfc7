// `lowbit slurm` and `lowbit merge` for real: a one-node Slurm cluster (munge, slurmctld,
// slurmd from Debian's slurm-wlm) is started in a temporary folder, the generated job array runs
// the sweep's shards, and the shard databases are merged without duplicates.

#include "test_support.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <unistd.h>

using Catch::Matchers::Contains;

namespace {

std::string run_command(const std::string& command, int* exit_code = nullptr) {
  auto result = lowbit::testing::run_shell(command);
  if (exit_code != nullptr) *exit_code = result.exit_code;
  return result.output;
}

bool on_path(const std::string& program) {
  int code = 0;
  run_command("command -v " + program + " >/dev/null", &code);
  return code == 0;
}

/// A private one-node cluster: its own munge socket, ports, state and logs; stopped on exit.
class SlurmCluster {
 public:
  explicit SlurmCluster(const lowbit::testing::TemporaryFolder& folder) : folder_(folder) {
    const auto root = folder.path();
    const int port = 20000 + static_cast<int>(::getpid() % 20000);
    run_command(
        fmt::format("mkdir -p '{0}/state' '{0}/spool' '{0}/munge' && "
                    "dd if=/dev/urandom of='{0}/munge/munge.key' bs=1024 count=1 && "
                    "chmod 400 '{0}/munge/munge.key'",
                    root));
    int code = 0;
    auto output = run_command(
        fmt::format(
            "munged --force --key-file='{0}/munge/munge.key' --socket='{0}/munge/socket' "
            "--pid-file='{0}/munge/pid' --log-file='{0}/munge/log' --seed-file='{0}/munge/seed'",
            root),
        &code);
    INFO(output);
    REQUIRE(code == 0);
    const auto host = run_command("hostname -s");
    std::ofstream(folder.file("slurm.conf")) << fmt::format(
        "ClusterName=lowbittest\nSlurmctldHost={host}\nSlurmUser=root\nSlurmdUser=root\n"
        "SlurmctldPort={p}\nSlurmdPort={q}\nAuthType=auth/munge\nCredType=cred/munge\n"
        "AuthInfo=socket={r}/munge/socket\nStateSaveLocation={r}/state\nSlurmdSpoolDir={r}/spool\n"
        "SlurmctldPidFile={r}/slurmctld.pid\nSlurmdPidFile={r}/slurmd.pid\n"
        "SlurmctldLogFile={r}/slurmctld.log\nSlurmdLogFile={r}/slurmd.log\n"
        "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSelectType=select/cons_tres\n"
        "SelectTypeParameters=CR_CPU\nMpiDefault=none\nReturnToService=2\nJobCompType=jobcomp/"
        "none\n"
        "AccountingStorageType=accounting_storage/none\n"
        "NodeName={host} CPUs=2 State=UNKNOWN\nPartitionName=test Nodes=ALL Default=YES "
        "MaxTime=INFINITE State=UP\n",
        fmt::arg("host", host.substr(0, host.find('\n'))), fmt::arg("p", port),
        fmt::arg("q", port + 1), fmt::arg("r", root));
    environment_ = fmt::format("SLURM_CONF='{}'", folder.file("slurm.conf"));
    output = run_command(slurm("slurmctld -i") + " && " + slurm("slurmd"), &code);
    INFO(output);
    REQUIRE(code == 0);
    for (int i = 0;
         i < 100 && run_command(slurm("sinfo -h -o %t")).find("idle") == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    REQUIRE_THAT(run_command(slurm("sinfo -h -o %t")), Contains("idle"));
  }

  ~SlurmCluster() {
    run_command(
        fmt::format("for f in '{0}/slurmd.pid' '{0}/slurmctld.pid' '{0}/munge/pid'; do "
                    "[ -f \"$f\" ] && kill \"$(cat \"$f\")\"; done; sleep 0.5",
                    folder_.path()));
  }

  /// `command` with this cluster's configuration.
  std::string slurm(const std::string& command) const { return environment_ + " " + command; }

  /// Waits until the job has left the queue.
  void wait_for(const std::string& job) const {
    for (int i = 0; i < 1200; ++i) {
      if (run_command(slurm("squeue -h -j " + job)).find(job) == std::string::npos) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL("job " << job << " did not finish within 2 minutes");
  }

 private:
  const lowbit::testing::TemporaryFolder& folder_;
  std::string environment_;
};

}  // namespace

TEST_CASE("a Slurm job array trains the shards and merge combines them once", "[slurm]") {
  if (::geteuid() != 0 || !on_path("slurmctld") || !on_path("munged")) {
    LOWBIT_SKIP(
        "needs root and Debian's slurm-wlm and munge (scripts/install-deps.sh installs them)");
  }
  lowbit::testing::TemporaryFolder folder;
  SlurmCluster cluster(folder);

  auto spec = lowbit::testing::tiny_experiment("sharded");
  spec["trials"] = 3;
  spec["training"]["epochs"] = 1;
  const auto experiment = folder.file("sharded.json");
  std::ofstream(experiment) << spec.dump();
  const std::string lowbit = fmt::format("'{}/bin/lowbit'", LOWBIT_BINARY_DIR);

  int code = 0;
  // A space in the folder: the script quotes it for the shell and for sbatch's #SBATCH lines.
  const auto shard_folder = folder.file("my shards");
  auto written =
      run_command(fmt::format("{} slurm '{}' --shards 2 --cpus-per-task 1 --shard-folder '{}'",
                              lowbit, experiment, shard_folder),
                  &code);
  INFO(written);
  REQUIRE(code == 0);
  auto submitted = run_command(
      cluster.slurm(fmt::format("sbatch --parsable '{}/sharded.sbatch'", shard_folder)), &code);
  INFO(submitted);
  REQUIRE(code == 0);
  cluster.wait_for(submitted.substr(0, submitted.find_first_of(";\n")));

  const auto merged = folder.file("merged.db");
  const auto shards =
      fmt::format("'{0}/sharded-shard-0.db' '{0}/sharded-shard-1.db'", shard_folder);
  auto merge = run_command(fmt::format("{} merge --db '{}' {}", lowbit, merged, shards), &code);
  INFO(merge);
  INFO(run_command(fmt::format("cat '{}'/*.log", shard_folder)));
  REQUIRE(code == 0);
  // Each task's log went where the #SBATCH --output line (in double quotes) said.
  CHECK(boost::filesystem::is_regular_file(shard_folder + "/sharded-shard-0.log"));
  CHECK(boost::filesystem::is_regular_file(shard_folder + "/sharded-shard-1.log"));
  CHECK_THAT(merge, Contains("6 trials added, 0 already there"));
  auto table = run_command(fmt::format("{} table --db '{}'", lowbit, merged), &code);
  CHECK_THAT(table, Contains("(n=3)"));

  // Merging the same shards again adds nothing.
  merge = run_command(fmt::format("{} merge --db '{}' {}", lowbit, merged, shards), &code);
  REQUIRE(code == 0);
  CHECK_THAT(merge, Contains("0 trials added, 6 already there"));
}
