// Experiment files written to break things: injection through names and labels, files that would
// overflow the stack, values that used to escape validation until a trial ran.

#include <lowbit/experiment/experiment.h>
#include <lowbit/results/table.h>
#include <lowbit/runner/slurm.h>
#include <lowbit/sdk/error.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/util/exception_message.h>

#include "test_support.h"

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <fstream>
#include <sstream>

using Catch::Matchers::Contains;
using lowbit::testing::lowbit_cli;
using lowbit::testing::write_experiment;

namespace {

using lowbit::testing::shared_registry;

std::string error_message_of(const nlohmann::json& spec) {
  try {
    lowbit::parse_experiment(spec, "hostile.json", shared_registry());
  } catch (const lowbit::ConfigError& e) {
    return e.what();
  }
  FAIL("the spec should have been rejected: " << spec.dump());
  return "";
}

lowbit::RunSummary summary(const std::string& experiment, const std::string& method) {
  lowbit::RunSummary s;
  s.experiment = experiment;
  s.model = "resnet20";
  s.method = method;
  s.weight_bits = s.activation_bits = 2;
  s.trials = 1;
  s.top1_mean = 50;
  s.top5_mean = 90;
  return s;
}

bool has_line_starting_with(const std::string& text, const std::string& prefix) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("experiment names are held to a safe character set when the file is read", "[hostile]") {
  for (const std::string& bad :
       std::vector<std::string>{"../../x", "a/b", "x\nrm -rf ~", "$(reboot)", "a b", ".hidden",
                                "-rf", "", "name;ls", "tab\tname", std::string(101, 'a')}) {
    INFO(bad);
    auto spec = lowbit::testing::tiny_experiment();
    spec["name"] = bad;
    const auto message = error_message_of(spec);
    CHECK_THAT(message, Contains("hostile.json: /name: bad name"));
    CHECK_THAT(message, Contains("A-Z a-z 0-9 . _ -"));
  }
  for (const std::string& good :
       std::vector<std::string>{"table2_sp", "T1.v2-b", "0", std::string(100, 'a')}) {
    auto spec = lowbit::testing::tiny_experiment();
    spec["name"] = good;
    CHECK(lowbit::parse_experiment(spec, "ok.json", shared_registry()).name == good);
  }
}

TEST_CASE("labels with control characters are refused; others are escaped in every format",
          "[hostile]") {
  auto spec = lowbit::testing::tiny_experiment();
  // The plain row is the 32W32A run that the KD row starts from.
  spec["strategies"] =
      nlohmann::json::parse(R"([[], [{"name": "kd", "label": "KD\n\\input{/etc/passwd}"}]])");
  CHECK_THAT(error_message_of(spec), Contains("/strategies/1/0/label: bad label"));
  spec["strategies"][1][0]["label"] = std::string(65, 'x');
  CHECK_THAT(error_message_of(spec), Contains("bad label"));
  spec["strategies"][1][0]["label"] = "KD(\\input{x}) | <b>";
  CHECK(lowbit::parse_experiment(spec, "ok.json", shared_registry()).runs.back().record.method ==
        "dorefa+KD(\\input{x}) | <b>");

  // A database from elsewhere may still hold such text: it comes out inert.
  const std::string injected = "dorefa\n\\input{/etc/passwd}\n# heading | cell";
  const std::vector<lowbit::RunSummary> summaries{summary("first\n\\input{x}", injected),
                                                  summary("second", "dorefa")};
  const auto latex = lowbit::render_table(summaries, lowbit::TableFormat::latex);
  CHECK_FALSE(has_line_starting_with(latex, "\\input"));
  CHECK_THAT(latex, Contains("\\textbackslash{}input\\{/etc/passwd\\}"));
  CHECK_THAT(latex, Contains("% first \\textbackslash{}input\\{x\\}\n"));
  const auto markdown = lowbit::render_table(summaries, lowbit::TableFormat::markdown);
  CHECK_FALSE(has_line_starting_with(markdown, "\\input"));
  CHECK_FALSE(has_line_starting_with(markdown, "# "));
  CHECK_THAT(markdown, Contains("### first \\\\input{x}\n"));
  CHECK_THAT(markdown, Contains("resnet20 dorefa \\\\input{/etc/passwd} \\# heading \\| cell"));
  // Every table row still has the same number of cells.
  std::istringstream rows(markdown);
  for (std::string row; std::getline(rows, row);) {
    if (row.rfind("| Precision", 0) == 0) {
      size_t separators = 0;
      for (size_t i = 0; i < row.size(); ++i)
        separators += row[i] == '|' && (i == 0 || row[i - 1] != '\\');
      CHECK(separators == 4);
      break;
    }
  }
}

TEST_CASE("the Slurm script quotes what it writes and refuses what it cannot quote", "[hostile]") {
  lowbit::SlurmOptions options;
  options.executable = "/opt/lowbit's/bin/lowbit";
  options.experiment = "/data/it's.json";
  options.shard_folder = "/scratch/my shards";
  options.name = "table1";
  const auto script = lowbit::slurm_array_script(options);
  CHECK_THAT(script, Contains("#SBATCH --output=\"/scratch/my shards/table1-shard-%a.log\"\n"));
  CHECK_THAT(script, Contains("exec '/opt/lowbit'\\''s/bin/lowbit' run '/data/it'\\''s.json'"));

  auto refused = [&](lowbit::SlurmOptions bad) {
    CHECK_THROWS_AS(lowbit::slurm_array_script(bad), std::invalid_argument);
  };
  for (const std::string name : {"x\ntouch /tmp/pwned", "../../x", "a b"}) {
    auto bad = options;
    bad.name = name;
    refused(bad);
  }
  auto bad = options;
  bad.shard_folder = "/scratch/x\"\n#SBATCH --wrap=reboot";
  refused(bad);
  bad = options;
  bad.partition = "gpu\n#SBATCH --uid=0";
  refused(bad);
  bad = options;
  bad.time_limit = "1:00; reboot";
  refused(bad);
}

TEST_CASE("lowbit slurm writes a script into the current folder", "[hostile][e2e]") {
  lowbit::testing::TemporaryFolder folder;
  const auto file = write_experiment(folder, "exp.json", lowbit::testing::tiny_experiment());
  const auto result = lowbit::testing::run_shell(
      fmt::format("cd '{}' && '{}/bin/lowbit' slurm exp.json -o plain.sbatch", folder.path(),
                  LOWBIT_BINARY_DIR));
  INFO(result.output);
  CHECK(result.exit_code == 0);
  CHECK(boost::filesystem::is_regular_file(folder.file("plain.sbatch")));
}

TEST_CASE("a deeply nested file is refused without a crash", "[hostile][e2e]") {
  lowbit::testing::TemporaryFolder folder;
  const auto path = folder.file("deep.json");
  {
    std::ofstream out(path);
    out << "{\"name\": \"deep\", \"x\": " << std::string(200000, '[') << std::string(200000, ']')
        << "}";
  }
  auto result = lowbit_cli(fmt::format("run '{}' --dry-run", path));
  INFO(result.output.substr(0, 2000));
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.output, Contains("deep.json: /x/0/0/0/"));
  CHECK_THAT(result.output, Contains("/0: nested deeper than 64 levels"));
}

TEST_CASE("duplicate keys, huge numbers and oversized values are clear errors", "[hostile]") {
  CHECK_THROWS_WITH(
      lowbit::parse_json(R"({"name": "a", "training": {"epochs": 1, "epochs": 2}})", "dup.json"),
      Contains("dup.json: /training/epochs: this key appears twice"));
  CHECK_THROWS_WITH(lowbit::parse_json(R"({"lr": 1e400})", "big.json"),
                    Contains("big.json: /: not valid JSON") && Contains("1e400"));
  CHECK_NOTHROW(lowbit::parse_json(R"({"a": [{"b": 1}, {"b": 2}], "c": {"b": 3}})", "fine.json"));
  CHECK_THROWS_WITH(lowbit::parse_json(R"({"a": [{"b": 1}, {"b": 2, "b": 3}]})", "inner.json"),
                    Contains("inner.json: /a/1/b: this key appears twice"));

  auto spec = lowbit::testing::tiny_experiment();
  spec["trials"] = std::string(50 * 1000 * 1000, 'x');
  const auto message = error_message_of(spec);
  CHECK_THAT(message, Contains("hostile.json: /trials: expected an integer"));
  CHECK_THAT(message, Contains("(50000002 characters in all)"));
  CHECK(message.size() < 400);
}

TEST_CASE("precisions with long numbers are a clear error, not \"stoi\"", "[hostile]") {
  for (const std::string bad : {"99999999999W2A", "2W99999999999A", "001W2A", "33W2A", "0W2A"}) {
    INFO(bad);
    auto spec = lowbit::testing::tiny_experiment();
    spec["precisions"] = {bad};
    const auto message = error_message_of(spec);
    CHECK_THAT(message, Contains("hostile.json: /precisions/0:"));
    CHECK_THAT(message, Contains("bit-widths 1..32"));
  }
}

TEST_CASE("model options are refused instead of silently dropped", "[hostile]") {
  auto spec = lowbit::testing::tiny_experiment();
  spec["models"] = nlohmann::json::parse(R"([{"name": "resnet20", "options": {"width": 2}}])");
  CHECK_THAT(error_message_of(spec),
             Contains("/models/0/options: the zoo's models take no options"));
  spec["models"] = nlohmann::json::parse(R"([{"name": "resnet20", "options": {}}])");
  CHECK_NOTHROW(lowbit::parse_experiment(spec, "ok.json", shared_registry()));
}

TEST_CASE("a KD teacher the zoo lacks and a missing teacher file fail with the matrix",
          "[hostile]") {
  auto spec = lowbit::testing::tiny_experiment();
  spec["strategies"] =
      nlohmann::json::parse(R"([[{"name": "kd", "options": {"teacher": "resnet999"}}]])");
  const auto teacher = error_message_of(spec);
  CHECK_THAT(teacher, Contains("/strategies/0/0/options: kd needs the model \"resnet999\""));
  CHECK_THAT(teacher, Contains("resnet32"));  // the allowed names
  spec["strategies"][0][0]["options"] = {{"teacher_checkpoint", "/nonexistent/t.pt"}};
  CHECK_THAT(error_message_of(spec),
             Contains("/strategies/0/0/options/teacher_checkpoint: no readable file"));
  spec["strategies"][0][0]["options"] = {{"student_checkpoint", "/nonexistent/s.pt"}};
  CHECK_THAT(error_message_of(spec), Contains("/options/student_checkpoint: no readable file"));

  lowbit::testing::TemporaryFolder folder;
  spec["strategies"][0][0]["options"] = {{"teacher", "resnet999"}};
  auto dry =
      lowbit_cli(fmt::format("run '{}' --dry-run", write_experiment(folder, "kd.json", spec)));
  CHECK(dry.exit_code == 1);
  CHECK_THAT(dry.output, Contains("needs the model \"resnet999\""));
}

TEST_CASE("a LibTorch error is its first line, without the stack trace", "[hostile]") {
  std::string message;
  try {
    torch::zeros({2, 3}).view({7});
  } catch (const std::exception& e) {
    message = lowbit::exception_message(e);
  }
  CHECK_THAT(message, Contains("shape '[7]' is invalid"));
  CHECK(message.find('\n') == std::string::npos);
  CHECK(message.find("frame #") == std::string::npos);
  CHECK(lowbit::exception_message(std::runtime_error("plain\ntwo lines")) == "plain\ntwo lines");
}

TEST_CASE("an in-memory database is refused", "[hostile][e2e]") {
  lowbit::testing::TemporaryFolder folder;
  const auto file = write_experiment(folder, "exp.json", lowbit::testing::tiny_experiment());
  for (const std::string db : {":memory:", ""}) {
    auto run = lowbit_cli(fmt::format("run '{}' --db '{}'", file, db));
    INFO(run.output);
    CHECK(run.exit_code == 1);
    CHECK_THAT(run.output, Contains("not a file name"));
  }
}
