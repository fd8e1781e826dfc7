// `lowbit report`: the HTML page from a small database, and that page in headless Chromium.
#include <lowbit/report/report.h>
#include <lowbit/results/paired.h>
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
  plain.config = {{"model", "resnet20"}, {"strategies", nlohmann::json::array()}};
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
  kd.config["strategies"] = kd.strategies;  // so the plain run is its baseline
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

/// A run of experiment "compare": resnet20 with DoReFa at `bits`, the given strategies and label.
int64_t compare_run(lowbit::ResultStore& store, int64_t experiment, int bits,
                    const std::string& method, std::vector<std::string> strategies, int seed = 0) {
  lowbit::RunRecord run;
  run.model = "resnet20";
  run.quantizer = "dorefa";
  run.weight_bits = run.activation_bits = bits;
  run.strategies = strategies;
  run.method = method;
  run.config = {{"model", "resnet20"},     {"quantizer", "dorefa"},    {"weight_bits", bits},
                {"activation_bits", bits}, {"strategies", strategies}, {"seed", seed}};
  run.hash = fmt::format("{}-{}", method, bits);
  return store.ensure_run(experiment, run);
}

/// Records trial `index` ending at `final_top1` after `epochs` epochs (5 points a epoch before).
void compare_trial(lowbit::ResultStore& store, int64_t run, int64_t index, double final_top1,
                   int epochs) {
  lowbit::TrialRecord trial;
  trial.trial_index = index;
  trial.seed = index;
  trial.device = "cpu";
  for (int e = 1; e <= epochs; ++e) {
    trial.epochs.push_back(epoch(e, final_top1 - 5 * (epochs - e), 2, {}));
  }
  trial.top1 = final_top1;
  trial.top5 = final_top1 + 10;
  store.record_trial(run, trial);
}

// Final top-1 of the comparison's 2W2A runs, by trial index.
const std::vector<double> kBaselineTop1{70, 72, 74};
const std::vector<double> kStochasticTop1{71, 74, 77};  // +1, +2, +3: interval spans 0
const std::vector<double> kTwoStageTop1{73, 76, 79};    // +3, +4, +5: interval above 0
const std::string kOddLabel = "dorefa+<KD> & \"x\"";    // a free-text label to escape

/// Experiment "compare": at 2W2A a baseline, SP and TS (8 epochs: a staged strategy) with 3
/// trials each, a KD run with an odd label and one trial, and a PP run of another seed (no
/// baseline to pair with); at 4W4A two strategy runs without a baseline; at 32W32A the baseline
/// alone (nothing to compare).
void fill_comparison(lowbit::ResultStore& store) {
  const auto experiment =
      store.ensure_experiment("compare", "compare.json", nlohmann::json::object());
  const auto baseline = compare_run(store, experiment, 2, "dorefa", {});
  const auto stochastic = compare_run(store, experiment, 2, "dorefa+SP", {"stochastic"});
  const auto two_stage = compare_run(store, experiment, 2, "dorefa+TS", {"two_stage"});
  const auto kd = compare_run(store, experiment, 2, kOddLabel, {"kd"});
  for (int t = 0; t < 3; ++t) {
    compare_trial(store, baseline, t, kBaselineTop1[t], 4);
    compare_trial(store, stochastic, t, kStochasticTop1[t], 4);
    compare_trial(store, two_stage, t, kTwoStageTop1[t], 8);
  }
  compare_trial(store, kd, 0, 75, 4);
  // Another seed: not the same configuration as the baseline, so nothing to pair with.
  const auto other_seed = compare_run(store, experiment, 2, "dorefa+PP", {"progressive"}, 1);
  for (int t = 0; t < 2; ++t) compare_trial(store, other_seed, t, 60, 4);
  const auto sp4 = compare_run(store, experiment, 4, "dorefa+SP", {"stochastic"});
  const auto kd4 = compare_run(store, experiment, 4, "dorefa+KD", {"kd"});
  const auto full = compare_run(store, experiment, 32, "dorefa", {});
  for (int t = 0; t < 2; ++t) {
    compare_trial(store, sp4, t, 80 + t, 4);
    compare_trial(store, kd4, t, 81 + t, 4);
    compare_trial(store, full, t, 90 + t, 4);
  }
}

/// The text from `begin` (included) to the first `end` after it (included); "" when absent.
std::string between(const std::string& text, const std::string& begin, const std::string& end) {
  const auto from = text.find(begin);
  if (from == std::string::npos) return "";
  const auto to = text.find(end, from + begin.size());
  if (to == std::string::npos) return "";
  return text.substr(from, to + end.size() - from);
}

/// The dot-and-interval row (<g class="row">…</g>) labelled `label` (as escaped in the page).
std::string interval_row(const std::string& svg, const std::string& label) {
  for (auto at = svg.find("<g class=\"row\">"); at != std::string::npos;
       at = svg.find("<g class=\"row\">", at + 1)) {
    const auto row = svg.substr(at, svg.find("</g>", at) + 4 - at);
    if (row.find(">" + label + "</text>") != std::string::npos) return row;
  }
  return "";
}

/// The number in attribute `name` of the first element of `text` that has it.
double attribute(const std::string& text, const std::string& name) {
  std::smatch match;
  const std::regex pattern(" " + name + "=\"([-0-9.e]+)\"");
  REQUIRE(std::regex_search(text, match, pattern));
  return std::stod(match[1].str());
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
  // Long labels go below the plot, a row each: 260 + 8 + 2 rows of 16.
  chart.legend_below = true;
  const auto below = lowbit::render_svg_chart(chart);
  CHECK_THAT(below, Contains("height=\"300\""));
  CHECK_THAT(below, Contains("<text class=\"legend\" x=\"80.0\" y=\"268.0\">mean</text>"));
  CHECK_THAT(below, Contains("<text class=\"legend\" x=\"80.0\" y=\"284.0\">bits</text>"));
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
  // Runs: accuracy + bits + throughput (+ 2 extras for the KD run); the comparison's curves.
  CHECK(count(html, "<svg class=\"chart\"") == 3 + 5 + 1);
  // The KD run against the plain one, trials 0 and 1: +1 and 0, t(1 df, 0.975) = 12.706.
  CHECK(count(html, "<svg class=\"chart intervals\"") == 1);
  CHECK_THAT(html, Contains(">+0.50 [-5.85, +6.85] n=2</text>"));
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

TEST_CASE("the report compares each baseline with its strategy runs", "[report]") {
  lowbit::testing::TemporaryFolder folder;
  lowbit::ResultStore store(folder.file("results.db"));
  fill_comparison(store);
  const auto html = lowbit::render_report(store, {});
  const auto section =
      between(html, "<section class=\"comparison\" id=\"compare-compare\">", "</section>");
  REQUIRE_FALSE(section.empty());
  // 2W2A and 4W4A have several methods; 32W32A has one and gets no group.
  CHECK(count(section, "<div class=\"comparison-group\">") == 2);
  CHECK_THAT(section, Contains("<h4>resnet20 · dorefa · 2W2A</h4>"));
  CHECK_THAT(section, Contains("<h4>resnet20 · dorefa · 4W4A</h4>"));
  CHECK(section.find("32W32A") == std::string::npos);
  const auto group = between(section, "<h4>resnet20 · dorefa · 2W2A</h4>", "</div>\n</div>");
  REQUIRE_FALSE(group.empty());

  SECTION("overlaid curves: a mean line and band per method, legend, x over the longest run") {
    const auto overlay = between(group, "<svg class=\"chart\"", "</svg>");
    REQUIRE_FALSE(overlay.empty());
    const std::string escaped = "dorefa+&lt;KD&gt; &amp; &quot;x&quot;";
    for (const auto& entry : {std::string("dorefa · 3 trials"), std::string("dorefa+SP · 3 trials"),
                              std::string("dorefa+TS · 3 trials"), escaped + " · 1 trial"}) {
      CHECK_THAT(overlay, Contains("<text class=\"legend\"") && Contains(">" + entry + "</text>"));
      CHECK_THAT(overlay, Contains("<title>" + entry + "</title>"));
    }
    CHECK_THAT(overlay, Contains(">shaded: min..max over trials</text>"));
    CHECK(html.find("<KD>") == std::string::npos);  // the label is escaped everywhere
    // Three runs of 3 trials and one of 2 have bands; the one-trial run has none.
    CHECK(count(overlay, "<polygon class=\"band\"") == 4);
    CHECK(count(overlay, "<polyline class=\"series\"") == 5);
    CHECK_THAT(overlay, Contains(">dorefa+PP · 2 trials</text>"));
    // Distinct colours, the same per method in both charts.
    for (const auto* color : {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"}) {
      CHECK_THAT(overlay, Contains(fmt::format("stroke=\"{}\"", color)));
    }
    // TS trains 8 epochs, the rest 4: its mean line has 8 points and the axis reaches 8.
    const auto ts_line = between(overlay, "<polyline class=\"series\"", "dorefa+TS · 3 trials");
    const auto ts_points = between(ts_line.substr(ts_line.rfind("<polyline")), "points=\"", "\"");
    CHECK(count(ts_points, ",") == 8);
    CHECK_THAT(overlay, Contains("text-anchor=\"middle\">8</text>"));
    CHECK_THAT(group, Contains("The runs differ in length (4 to 8 epochs)"));
    CHECK_THAT(group, Contains("x is the epoch index as stored"));
  }

  SECTION("differences to the baseline: paired dots and Student-t intervals") {
    const auto dots = between(group, "<svg class=\"chart intervals\"", "</svg>");
    REQUIRE_FALSE(dots.empty());
    CHECK_THAT(group, Contains("Baseline: dorefa."));
    CHECK(count(dots, "<g class=\"row\">") == 4);  // SP, TS, KD, PP; not the baseline itself

    std::vector<std::pair<double, double>> sp_pairs, ts_pairs;
    for (size_t t = 0; t < 3; ++t) {
      sp_pairs.emplace_back(kStochasticTop1[t], kBaselineTop1[t]);
      ts_pairs.emplace_back(kTwoStageTop1[t], kBaselineTop1[t]);
    }
    const auto sp = lowbit::paired_difference(sp_pairs);
    const auto ts = lowbit::paired_difference(ts_pairs);
    // Differences 1, 2, 3: mean 2, half-width t(2 df, 0.975) / sqrt(3) = 4.302653 / 1.732051.
    REQUIRE(sp.mean == 2.0);
    REQUIRE(sp.low == Approx(2.0 - 4.302653 / std::sqrt(3.0)).epsilon(1e-6));
    REQUIRE(ts.mean == 4.0);
    REQUIRE(ts.excludes_zero());

    const auto sp_row = interval_row(dots, "dorefa+SP");
    REQUIRE_FALSE(sp_row.empty());
    CHECK(attribute(sp_row, "data-mean") == sp.mean);
    CHECK_THAT(sp_row, Contains(fmt::format("data-low=\"{}\" data-high=\"{}\"", sp.low, sp.high)));
    CHECK_THAT(sp_row, Contains(">+2.00 [-0.48, +4.48] n=3</text>"));
    CHECK_THAT(sp_row, Contains("<line class=\"interval\""));

    const auto ts_row = interval_row(dots, "dorefa+TS");
    REQUIRE_FALSE(ts_row.empty());
    CHECK(attribute(ts_row, "data-mean") == ts.mean);
    CHECK_THAT(ts_row, Contains(fmt::format("data-low=\"{}\" data-high=\"{}\"", ts.low, ts.high)));
    CHECK_THAT(ts_row, Contains("<line class=\"interval excludes-zero\""));
    CHECK_THAT(ts_row, Contains(fmt::format(">{:+.2f} [{:+.2f}, {:+.2f}]† n=3</text>", ts.mean,
                                            ts.low, ts.high)));

    // One trial: the dot at 75 - 70, no interval, "n=1".
    const auto kd_row = interval_row(dots, "dorefa+&lt;KD&gt; &amp; &quot;x&quot;");
    REQUIRE_FALSE(kd_row.empty());
    CHECK(attribute(kd_row, "data-mean") == 5.0);
    CHECK_THAT(kd_row, Contains(">+5.00 n=1</text>"));
    CHECK(kd_row.find("class=\"interval") == std::string::npos);

    // Another seed's run has no baseline to pair with: a row without dot or interval.
    const auto pp_row = interval_row(dots, "dorefa+PP");
    REQUIRE_FALSE(pp_row.empty());
    CHECK_THAT(pp_row, Contains(">no paired trials with a baseline of the same configuration<"));
    CHECK(pp_row.find("<circle") == std::string::npos);
    CHECK(pp_row.find("<line") == std::string::npos);

    // The dots sit where their means are on the axis through the zero line.
    const double zero = attribute(between(dots, "<line class=\"zero\"", "/>"), "x1");
    const double sp_x = attribute(between(sp_row, "<circle", ">"), "cx");
    const double ts_x = attribute(between(ts_row, "<circle", ">"), "cx");
    const double kd_x = attribute(between(kd_row, "<circle", ">"), "cx");
    CHECK(zero < sp_x);
    CHECK((ts_x - zero) / (sp_x - zero) == Approx(2.0).margin(0.01));
    CHECK((kd_x - zero) / (sp_x - zero) == Approx(2.5).margin(0.01));
    // SP's interval reaches left of 0, TS's does not.
    CHECK(attribute(between(sp_row, "<line class=\"interval\"", ">"), "x1") < zero);
    CHECK(attribute(between(ts_row, "<line class=\"interval", ">"), "x1") > zero);
  }

  SECTION("a group without a baseline has curves and no differences") {
    // The last group of the section.
    const auto no_baseline = between(section, "<h4>resnet20 · dorefa · 4W4A</h4>", "</section>");
    REQUIRE_FALSE(no_baseline.empty());
    CHECK(count(no_baseline, "<svg class=\"chart\"") == 1);
    CHECK(no_baseline.find("chart intervals") == std::string::npos);
    CHECK_THAT(no_baseline, Contains("No baseline"));
  }

  SECTION("--experiment keeps the page to one experiment") {
    fill(store);
    lowbit::ReportOptions only;
    only.experiment = "demo";
    const auto demo = lowbit::render_report(store, only);
    CHECK_THAT(demo, Contains("id=\"compare-demo\""));
    CHECK(demo.find("id=\"compare-compare\"") == std::string::npos);
    CHECK(count(lowbit::render_report(store, {}), "<section class=\"comparison\"") == 2);
  }
}

TEST_CASE("the report loads in headless Chromium without console errors", "[report][chromium]") {
  const auto chromium = find_chromium();
  if (chromium.empty()) {
    LOWBIT_SKIP("no chromium on PATH (scripts/install-deps.sh installs it)");
  }
  lowbit::testing::TemporaryFolder folder;
  lowbit::ResultStore store(folder.file("results.db"));
  fill(store);
  fill_comparison(store);
  const auto page = folder.file("report.html");
  lowbit::write_report(store, page, {});
  const auto html = lowbit::render_report(store, {});
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
  // Every chart of the page is in the DOM: the per-run ones and the comparisons' curves and
  // dot-and-interval charts (dots, intervals, zero lines).
  CHECK(count(dom.output, "<svg class=\"chart\"") == count(html, "<svg class=\"chart\""));
  CHECK(count(dom.output, "<svg class=\"chart intervals\"") == 2);
  CHECK(count(dom.output, "<circle class=\"dot\"") == 4);
  CHECK(count(dom.output, "<line class=\"interval") == 3);
  CHECK(count(dom.output, "<line class=\"zero\"") == 2);
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
