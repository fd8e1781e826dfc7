// `lowbit report`: the HTML page from a small database, and that page in headless Chromium.
#include <lowbit/report/report.h>
#include <lowbit/results/store.h>
#include <lowbit/util/atomic_file.h>

#include "test_support.h"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <boost/filesystem.hpp>

#include <array>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <sys/wait.h>

using Catch::Matchers::Contains;

namespace {

using lowbit::testing::run_shell;

lowbit::EpochRecord epoch(int64_t number, double top1, int bits,
                          std::map<std::string, double> extra) {
  lowbit::EpochRecord record;
  record.epoch = number;
  record.stage = fmt::format("stage{}", bits);
  record.weight_bits = bits;
  record.activation_bits = bits;
  record.learning_rate = 0.1;
  record.train_loss = 1.0 / number;
  record.train_top1 = top1 + 5;
  record.test_top1 = top1;
  record.test_top5 = top1 + 10;
  record.images_per_second = 1000 + 10 * number;
  record.seconds = 1;
  record.extra = std::move(extra);
  return record;
}

/// Two runs: a plain one with three trials and a KD + progressive one whose epochs carry the
/// teacher's accuracy, a quantized fraction and a falling bit-width; plus one failed trial.
void fill(lowbit::ResultStore& store) {
  const auto experiment = store.ensure_experiment("demo", "demo.json", nlohmann::json::object());
  lowbit::RunRecord plain;
  plain.hash = "aaaa1111";
  plain.model = "resnet20";
  plain.quantizer = "dorefa";
  plain.weight_bits = plain.activation_bits = 2;
  plain.method = "dorefa";
  plain.config = {{"model", "resnet20"}};
  const auto plain_id = store.ensure_run(experiment, plain);
  for (int t = 0; t < 3; ++t) {
    lowbit::TrialRecord trial;
    trial.trial_index = t;
    trial.seed = t;
    trial.device = "cpu";
    for (int e = 1; e <= 6; ++e) trial.epochs.push_back(epoch(e, 30 + 8 * e + 2 * t, 2, {}));
    trial.top1 = trial.epochs.back().test_top1;
    trial.top5 = trial.epochs.back().test_top5;
    trial.images_per_second = 1050;
    store.record_trial(plain_id, trial);
  }
  lowbit::RunRecord kd = plain;
  kd.hash = "bbbb2222";
  kd.method = "dorefa+pp+kd";
  kd.strategies = {"pp", "kd"};
  const auto kd_id = store.ensure_run(experiment, kd);
  for (int t = 0; t < 2; ++t) {
    lowbit::TrialRecord trial;
    trial.trial_index = t;
    trial.seed = 10 + t;
    trial.device = "cpu";
    for (int e = 1; e <= 6; ++e) {
      const int bits = e <= 2 ? 8 : (e <= 4 ? 4 : 2);
      trial.epochs.push_back(epoch(
          e, 25 + 9 * e + t, bits,
          {{"teacher_top1", 60 + 3 * e}, {"teacher_top5", 90}, {"quantized_fraction", e / 6.0}}));
    }
    trial.top1 = trial.epochs.back().test_top1;
    trial.images_per_second = 900;
    store.record_trial(kd_id, trial);
  }
  lowbit::TrialRecord failed;
  failed.trial_index = 2;
  failed.status = lowbit::TrialStatus::failed;
  failed.error = "training loss diverged (nan) <in epoch 3>";
  store.record_trial(kd_id, failed);
}

int count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    auto found = run_shell(fmt::format("command -v {}", name));
    if (found.exit_code == 0 && !found.output.empty())
      return found.output.substr(0, found.output.find('\n'));
  }
  return "";
}

}  // namespace

TEST_CASE("SVG charts draw lines, bands, steps and a legend", "[report]") {
  lowbit::Chart chart{"Top-1 <test>", "epoch", "top-1 (%)", {}, {}};
  chart.bands.push_back({{1, 2, 3}, {10, 20, 30}, {12, 24, 33}, "#123456"});
  chart.series.push_back({"mean", {1, 2, 3}, {11, 22, 31}});
  lowbit::ChartSeries bits{"bits", {1, 2, 3}, {8, 4, 4}};
  bits.step = true;
  chart.series.push_back(bits);
  const auto svg = lowbit::render_svg_chart(chart);
  CHECK_THAT(svg, Contains("<svg class=\"chart\""));
  CHECK_THAT(svg, Contains("Top-1 &lt;test&gt;"));
  CHECK(count(svg, "<polyline") == 2);
  CHECK(count(svg, "<polygon") == 1);
  // The staircase has an extra corner per step: 3 points + 2 corners.
  std::smatch match;
  std::string rest = svg;
  std::regex polyline("<polyline class=\"series\" points=\"([^\"]*)\"");
  std::vector<int> point_counts;
  while (std::regex_search(rest, match, polyline)) {
    point_counts.push_back(count(match[1].str(), ","));
    rest = match.suffix();
  }
  CHECK(point_counts == std::vector<int>{3, 5});
  CHECK(lowbit::html_escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;");
}

TEST_CASE("the report shows tables, per-run curves, teacher, schedule and extras", "[report]") {
  lowbit::testing::TemporaryFolder folder;
  lowbit::ResultStore store(folder.file("results.db"));
  fill(store);
  const auto html = lowbit::render_report(store, {});
  CHECK_THAT(html, Contains("<!DOCTYPE html>"));
  CHECK_THAT(html, Contains("<table class=\"results\">"));
  CHECK_THAT(html, Contains("dorefa+pp+kd"));
  CHECK_THAT(html, Contains("80.00 ± 2.00"));  // plain run: final top-1 78, 80, 82
  // Cost and start columns; these trials recorded neither, so they read as unknown and seed.
  CHECK_THAT(html, Contains("<th>epochs / trial</th><th>images / trial</th><th>starts from</th>"));
  CHECK_THAT(html, Contains("<td class=\"num\">?</td><td class=\"num\">?</td><td>scratch</td>"));
  CHECK_THAT(html, Contains("trial 0: from its seed · ? epochs, ? training images"));
  CHECK(count(html, "<section class=\"run\"") == 2);
  CHECK_THAT(html, Contains(">teacher<"));
  CHECK_THAT(html, Contains("Bit-width schedule"));
  CHECK_THAT(html, Contains("quantized_fraction"));
  CHECK_THAT(html, Contains("teacher_top5"));  // other extras are charted generically
  CHECK_THAT(html, Contains("Training throughput"));
  CHECK_THAT(html, Contains("&lt;in epoch 3&gt;"));  // the failed trial, escaped
  // Runs: accuracy + bits + throughput (+ 2 extras for the KD run).
  CHECK(count(html, "<svg class=\"chart\"") == 3 + 5);
  // Self-contained: nothing fetched from anywhere.
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);

  const auto path = folder.file("out/report.html");
  lowbit::write_report(store, path, {});
  std::ifstream in(path);
  std::stringstream written;
  written << in.rdbuf();
  CHECK(written.str().size() > 5000);
  CHECK_FALSE(boost::filesystem::exists(lowbit::temporary_path(path)));
}

TEST_CASE("the report loads in headless Chromium without console errors", "[report][chromium]") {
  const auto chromium = find_chromium();
  if (chromium.empty()) {
    LOWBIT_SKIP("no chromium on PATH (scripts/install-deps.sh installs it)");
  }
  lowbit::testing::TemporaryFolder folder;
  lowbit::ResultStore store(folder.file("results.db"));
  fill(store);
  const auto page = folder.file("report.html");
  lowbit::write_report(store, page, {});
  // Kept in the build folder for people to look at.
  const std::string screenshot = std::string(LOWBIT_BINARY_DIR) + "/report-screenshot.png";
  boost::filesystem::remove(screenshot);
  const auto flags = fmt::format(
      "--headless --no-sandbox --disable-gpu --disable-background-networking "
      "--disable-component-update --disable-sync --no-first-run --user-data-dir='{}' "
      "--enable-logging=stderr --v=0",
      folder.file("profile"));

  auto dom =
      run_shell(fmt::format("timeout 60 '{}' {} --dump-dom 'file://{}'", chromium, flags, page));
  INFO(dom.output.substr(0, 4000));
  REQUIRE(dom.exit_code == 0);
  CHECK(count(dom.output, "<svg class=\"chart\"") == 8);
  CHECK(count(dom.output, "<polyline") > 10);
  CHECK(dom.output.find("CONSOLE") == std::string::npos);
  CHECK(dom.output.find("Uncaught") == std::string::npos);

  auto shot = run_shell(
      fmt::format("timeout 60 '{}' {} --window-size=1200,1600 --screenshot='{}' 'file://{}'",
                  chromium, flags, screenshot, page));
  INFO(shot.output.substr(0, 4000));
  REQUIRE(shot.exit_code == 0);
  CHECK(shot.output.find("CONSOLE") == std::string::npos);
  REQUIRE(boost::filesystem::exists(screenshot));
  // A blank 1200x1600 PNG compresses to a few kB; a page of charts and tables does not.
  CHECK(boost::filesystem::file_size(screenshot) > 30000);
  std::ifstream png(screenshot, std::ios::binary);
  std::array<char, 8> magic{};
  png.read(magic.data(), magic.size());
  CHECK(std::string(magic.data() + 1, 3) == "PNG");
}
