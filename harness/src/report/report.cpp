#include <lowbit/report/report.h>
#include <lowbit/util/atomic_file.h>

#include <lowbit/experiment/experiment.h>
#include <lowbit/results/paired.h>

#include "report/charts.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

namespace lowbit {
namespace {

std::string mean_std(double mean, double std, int64_t trials) {
  if (trials > 1) return fmt::format("{:.2f} ± {:.2f}", mean, std);
  return fmt::format("{:.2f}", mean);
}

struct Statistics {
  double mean = 0, low = 0, high = 0;
};

Statistics statistics(const std::vector<double>& values) {
  Statistics out{0, std::numeric_limits<double>::infinity(),
                 -std::numeric_limits<double>::infinity()};
  for (double value : values) {
    out.mean += value;
    out.low = std::min(out.low, value);
    out.high = std::max(out.high, value);
  }
  out.mean /= std::max<size_t>(values.size(), 1);
  return out;
}

using EpochValue = std::function<std::optional<double>(const EpochRecord&)>;

/// Per epoch number, the value of every trial that has it.
std::map<int64_t, std::vector<double>> by_epoch(const std::vector<TrialRecord>& trials,
                                                const EpochValue& value) {
  std::map<int64_t, std::vector<double>> values;
  for (const auto& trial : trials) {
    for (const auto& epoch : trial.epochs) {
      if (auto v = value(epoch)) values[epoch.epoch].push_back(*v);
    }
  }
  return values;
}

/// Adds the mean line (and the min..max band when there are several trials) of `value`.
void add_mean(Chart& chart, const std::vector<TrialRecord>& trials, const EpochValue& value,
              const std::string& label, const std::string& color, bool dashed, bool band) {
  ChartSeries mean{label, {}, {}, color, 2.5, dashed};
  ChartBand range{{}, {}, {}, color};
  for (const auto& [epoch, values] : by_epoch(trials, value)) {
    auto stats = statistics(values);
    mean.x.push_back(epoch);
    mean.y.push_back(stats.mean);
    range.x.push_back(epoch);
    range.low.push_back(stats.low);
    range.high.push_back(stats.high);
  }
  if (mean.x.empty()) return;
  if (band && trials.size() > 1) chart.bands.push_back(range);
  chart.series.push_back(mean);
}

std::string div_chart(const Chart& chart) {
  return "<div class=\"chart-box\">" + render_svg_chart(chart) + "</div>\n";
}

std::string accuracy_chart(const std::vector<TrialRecord>& trials) {
  Chart chart{trials.size() > 1 ? "Test top-1 vs epoch (band: min..max)" : "Test top-1 vs epoch",
              "epoch",
              "top-1 (%)",
              {},
              {}};
  for (const auto& trial : trials) {
    ChartSeries line{fmt::format("trial {}", trial.trial_index), {}, {}, "#7f9fbf", 1.0};
    line.legend = false;
    for (const auto& epoch : trial.epochs) {
      line.x.push_back(epoch.epoch);
      line.y.push_back(epoch.test_top1);
    }
    chart.series.push_back(line);
  }
  auto teacher = [](const EpochRecord& e) -> std::optional<double> {
    auto found = e.extra.find("teacher_top1");
    if (found == e.extra.end()) return std::nullopt;
    return found->second;
  };
  const bool has_teacher = !by_epoch(trials, teacher).empty();
  const std::string who = has_teacher ? "student" : "top-1";
  add_mean(
      chart, trials, [](const EpochRecord& e) { return std::optional<double>(e.test_top1); },
      trials.size() > 1 ? fmt::format("{}, mean of {}", who, trials.size()) : who,
      charts::palette_color(0), false, true);
  add_mean(chart, trials, teacher, "teacher", charts::palette_color(1), true, true);
  if (trials.size() > 1) chart.series.push_back({"each trial", {}, {}, "#7f9fbf", 1.0});
  return div_chart(chart);
}

std::string bits_chart(const std::vector<TrialRecord>& trials) {
  Chart chart{"Bit-width schedule", "epoch", "bits", {}, {}};
  const auto& epochs = trials.front().epochs;
  ChartSeries weights{"weight bits", {}, {}, charts::palette_color(0), 2.5, false, true};
  ChartSeries activations{"activation bits", {}, {}, charts::palette_color(1), 2.0, true, true};
  for (const auto& epoch : epochs) {
    weights.x.push_back(epoch.epoch);
    weights.y.push_back(epoch.weight_bits);
    activations.x.push_back(epoch.epoch);
    activations.y.push_back(epoch.activation_bits);
  }
  chart.series = {weights, activations};
  return div_chart(chart);
}

std::string extras_charts(const std::vector<TrialRecord>& trials) {
  std::set<std::string> names;
  for (const auto& trial : trials) {
    for (const auto& epoch : trial.epochs) {
      for (const auto& [name, value] : epoch.extra) {
        if (name.rfind("teacher_top1", 0) != 0) names.insert(name);
      }
    }
  }
  std::string html;
  for (const auto& name : names) {
    Chart chart{trials.size() > 1 ? name + " (band: min..max)" : name, "epoch", name, {}, {}};
    add_mean(
        chart, trials,
        [&name](const EpochRecord& e) -> std::optional<double> {
          auto found = e.extra.find(name);
          if (found == e.extra.end()) return std::nullopt;
          return found->second;
        },
        trials.size() > 1 ? "mean" : name, charts::palette_color(2), false, true);
    html += div_chart(chart);
  }
  return html;
}

std::string throughput_chart(const std::vector<TrialRecord>& trials) {
  Chart chart{"Training throughput", "epoch", "images / s", {}, {}};
  add_mean(
      chart, trials,
      [](const EpochRecord& e) { return std::optional<double>(e.images_per_second); }, "img/s",
      charts::palette_color(3), false, true);
  return div_chart(chart);
}

std::string results_table(const std::vector<RunSummary>& summaries) {
  if (summaries.empty()) return "<p class=\"note\">No finished trials yet.</p>\n";
  std::string html =
      "<table class=\"results\"><thead><tr><th>experiment</th><th>model</th><th>method</th>"
      "<th>precision</th><th>trials</th><th>top-1 (%)</th><th>top-5 (%)</th><th>img/s</th>"
      "<th>epochs / trial</th><th>images / trial</th><th>starts from</th></tr></thead><tbody>\n";
  for (const auto& s : summaries) {
    // Trials recorded before lowbit counted their cost show "?".
    const bool cost_known = s.epochs_trained > 0;
    html += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>"
        "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.0f}</td>"
        "<td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
        html_escape(s.experiment), html_escape(s.model), html_escape(s.method),
        precision_label(s.weight_bits, s.activation_bits), s.trials,
        mean_std(s.top1_mean, s.top1_std, s.trials), mean_std(s.top5_mean, s.top5_std, s.trials),
        s.images_per_second, cost_known ? fmt::format("{:g}", s.epochs_trained) : "?",
        cost_known ? fmt::format("{:.0f}", s.images_seen) : "?",
        s.init.empty() ? "scratch" : html_escape(s.init));
  }
  return html + "</tbody></table>\n";
}

/// Trials that finished and recorded their epochs (older databases may lack the epochs).
std::vector<TrialRecord> finished_with_epochs(const std::vector<TrialRecord>& trials) {
  std::vector<TrialRecord> finished;
  for (const auto& trial : trials) {
    if (trial.status == TrialStatus::finished && !trial.epochs.empty()) finished.push_back(trial);
  }
  return finished;
}

/// A run in a comparison: its finished trials and its top-1 difference to the baseline, paired by
/// trial as results/paired.h computes it for `lowbit table --vs-baseline`.
struct ComparedRun {
  StoredRun run;
  std::vector<TrialRecord> finished;
  std::optional<PairedDifference> difference;
  bool is_baseline() const { return run.record.strategies.empty(); }
};

/// The runs of one experiment that share model, quantizer and precision (and quantize_all): the
/// baseline and its strategy variants, like the columns of `lowbit table --strategy-columns`.
/// One run per method label: the newest, as the table shows it.
struct MethodGroup {
  std::string model, quantizer;
  int weight_bits = 32, activation_bits = 32;
  bool all_layers = false;        ///< quantize_all: the method labels end in "*"
  std::vector<ComparedRun> runs;  ///< the baseline (if any) first, then as the runs were made
  int older_runs = 0;             ///< left out for a newer run of the same method

  bool has_baseline() const { return !runs.empty() && runs.front().is_baseline(); }
  bool holds(const RunRecord& r, bool r_all_layers) const {
    return model == r.model && quantizer == r.quantizer && weight_bits == r.weight_bits &&
           activation_bits == r.activation_bits && all_layers == r_all_layers;
  }
};

std::vector<MethodGroup> method_groups(ResultStore& store, const std::string& experiment) {
  auto summaries = store.summaries(experiment);
  add_baseline_differences(store, summaries);
  std::map<int64_t, std::optional<PairedDifference>> difference_of;
  for (const auto& summary : summaries) difference_of[summary.run_id] = summary.top1_difference;

  std::vector<MethodGroup> groups;
  for (const auto& run : store.runs(experiment)) {  // in id order: a later run is newer
    auto finished = finished_with_epochs(store.trials(run.id));
    if (finished.empty()) continue;
    const auto& r = run.record;
    const bool all_layers = !r.method.empty() && r.method.back() == '*';
    auto group = std::find_if(groups.begin(), groups.end(),
                              [&](const MethodGroup& g) { return g.holds(r, all_layers); });
    if (group == groups.end()) {
      groups.push_back({r.model, r.quantizer, r.weight_bits, r.activation_bits, all_layers, {}, 0});
      group = std::prev(groups.end());
    }
    ComparedRun compared{run, std::move(finished), difference_of[run.id]};
    auto same = std::find_if(group->runs.begin(), group->runs.end(),
                             [&](const ComparedRun& c) { return c.run.record.method == r.method; });
    if (same == group->runs.end()) {
      group->runs.push_back(std::move(compared));
    } else {
      *same = std::move(compared);
      ++group->older_runs;
    }
  }
  for (auto& group : groups) {
    std::stable_partition(group.runs.begin(), group.runs.end(),
                          [](const ComparedRun& c) { return c.is_baseline(); });
  }
  return groups;
}

/// An SVG with its caption (HTML, escaped by the caller).
std::string figure(const std::string& svg, const std::string& caption) {
  return "<figure class=\"chart-box\">" + svg + "<figcaption>" + caption +
         "</figcaption></figure>\n";
}

/// Every run's test top-1 against the epoch index as stored: its mean over trials with a
/// min..max band, one colour per method.
std::string overlay_chart(const MethodGroup& group) {
  Chart chart{"Test top-1 vs epoch, mean over trials per method",
              "epoch (counted over all stages)",
              "top-1 (%)",
              {},
              {}};
  chart.legend_below = true;
  int64_t shortest = std::numeric_limits<int64_t>::max(), longest = 0;
  for (size_t i = 0; i < group.runs.size(); ++i) {
    const auto& compared = group.runs[i];
    const auto trials = compared.finished.size();
    add_mean(
        chart, compared.finished,
        [](const EpochRecord& e) { return std::optional<double>(e.test_top1); },
        fmt::format("{} · {} trial{}", compared.run.record.method, trials, trials == 1 ? "" : "s"),
        charts::palette_color(i), i >= charts::palette_size(), true);
    int64_t epochs = 0;
    for (const auto& trial : compared.finished)
      epochs = std::max(epochs, trial.epochs.back().epoch);
    shortest = std::min(shortest, epochs);
    longest = std::max(longest, epochs);
  }
  ChartSeries band_key{"shaded: min..max over trials", {}, {}, "#c8c8c8", 8.0};
  chart.series.push_back(band_key);
  std::string caption =
      "Each line is a method's mean test top-1 over its trials, the shaded band its min..max; "
      "x is the epoch index as stored, counted over all of a run's stages.";
  if (shortest != longest) {
    caption += fmt::format(
        " The runs differ in length ({} to {} epochs): staged strategies (TS, PP) train extra "
        "stages before the target one, so the x axis spans the longest run and curves are not "
        "aligned by stage.",
        shortest, longest);
  }
  return figure(render_svg_chart(chart), caption);
}

/// Each strategy run's final top-1 minus the baseline's, paired by trial index: a dot at the mean
/// and the 95% Student-t interval of results/paired.h.
std::string difference_chart(const MethodGroup& group) {
  charts::IntervalChart chart{"Final top-1 minus the baseline's, paired by trial",
                              "difference in test top-1 (percentage points)",
                              {}};
  for (size_t i = 1; i < group.runs.size(); ++i) {
    const auto& compared = group.runs[i];
    chart.rows.push_back(
        {compared.run.record.method, compared.difference, charts::palette_color(i)});
  }
  const auto caption = fmt::format(
      "Baseline: {}. Dot: mean of (run − baseline) over the trial indices finished in both; "
      "line: its 95% Student-t interval (n − 1 degrees of freedom), drawn thick and marked † "
      "where it excludes 0; n=1: a single pair, no interval. The numbers of "
      "<code>lowbit table --vs-baseline</code>.",
      html_escape(group.runs.front().run.record.method));
  return figure(charts::render_interval_chart(chart), caption);
}

std::string group_section(const MethodGroup& group) {
  std::string html = fmt::format("<div class=\"comparison-group\"><h4>{} · {}{} · {}</h4>\n",
                                 html_escape(group.model), html_escape(group.quantizer),
                                 group.all_layers ? "*" : "",
                                 precision_label(group.weight_bits, group.activation_bits));
  if (group.older_runs > 0) {
    html += fmt::format(
        "<p class=\"note\">{} older run(s) of a method shown here left out: each method's newest "
        "run is compared, as in the table.</p>\n",
        group.older_runs);
  }
  html += "<div class=\"charts\">\n" + overlay_chart(group);
  if (group.has_baseline()) html += difference_chart(group);
  html += "</div>\n";
  if (!group.has_baseline()) {
    html +=
        "<p class=\"note\">No baseline (this model, quantizer and precision without strategies) "
        "has finished trials, so there are no differences to show.</p>\n";
  }
  return html + "</div>\n";
}

/// One experiment's comparisons (one paper table): a group per model, quantizer and precision
/// with more than one method. "" when the experiment has no finished trials.
std::string comparison_section(ResultStore& store, const std::string& experiment) {
  const auto groups = method_groups(store, experiment);
  if (groups.empty()) return "";
  std::string body;
  for (const auto& group : groups) {
    if (group.runs.size() > 1) body += group_section(group);
  }
  if (body.empty()) {
    body =
        "<p class=\"note\">No model, quantizer and precision has more than one method with "
        "finished trials.</p>\n";
  }
  return fmt::format(
      "<section class=\"comparison\" id=\"compare-{0}\"><h3>{0}</h3>\n{1}</section>\n",
      html_escape(experiment), body);
}

std::string run_section(const StoredRun& run, const std::vector<TrialRecord>& all_trials) {
  const auto finished = finished_with_epochs(all_trials);
  std::string failures;
  for (const auto& trial : all_trials) {
    if (trial.status == TrialStatus::failed) {
      failures += fmt::format("<li>trial {} (seed {}): {}</li>", trial.trial_index, trial.seed,
                              html_escape(trial.error));
    }
  }
  const auto& r = run.record;
  std::string html = fmt::format(
      "<section class=\"run\" id=\"run-{}\"><h3>{} · {} · {} · {}</h3>\n"
      "<p class=\"meta\">run {} · {} finished trial(s)",
      run.id, html_escape(run.experiment), html_escape(r.model), html_escape(r.method),
      precision_label(r.weight_bits, r.activation_bits), html_escape(r.hash.substr(0, 12)),
      finished.size());
  if (!finished.empty()) {
    std::vector<double> top1, speed;
    for (const auto& t : finished) {
      top1.push_back(t.top1);
      speed.push_back(t.images_per_second);
    }
    html += fmt::format(" · final top-1 {:.2f}% (min {:.2f}, max {:.2f}) · {:.0f} img/s on {}",
                        statistics(top1).mean, statistics(top1).low, statistics(top1).high,
                        statistics(speed).mean, html_escape(finished.front().device));
  }
  html += "</p>\n";
  std::string origins;
  for (const auto& trial : finished) {
    origins += fmt::format(
        "<li>trial {}: {} · {} epochs, {} training images</li>", trial.trial_index,
        trial.started_from.empty() ? "from its seed" : "from " + html_escape(trial.started_from),
        trial.epochs_trained > 0 ? std::to_string(trial.epochs_trained) : "?",
        trial.images_seen > 0 ? std::to_string(trial.images_seen) : "?");
  }
  if (!origins.empty()) html += "<ul class=\"meta\">" + origins + "</ul>\n";
  if (!failures.empty()) html += "<ul class=\"failures\">" + failures + "</ul>\n";
  if (!finished.empty()) {
    html += "<div class=\"charts\">\n";
    html += accuracy_chart(finished);
    html += bits_chart(finished);
    html += extras_charts(finished);
    html += throughput_chart(finished);
    html += "</div>\n";
  }
  return html + "</section>\n";
}

const char* kStyle = R"css(
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px;
       color: #222; background: #fff; }
h1 { margin-bottom: 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ccc; }
h3 { margin-bottom: 2px; } .meta, .note { color: #666; font-size: 13px; margin-top: 2px; }
table.results { border-collapse: collapse; font-size: 14px; }
table.results th, table.results td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
table.results th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.chart-box { border: 1px solid #e3e3e3; border-radius: 4px; padding: 4px; }
svg.chart text { font-size: 11px; fill: #333; } svg.chart .title { font-size: 13px; font-weight: bold; }
svg.chart .grid { stroke: #eee; } svg.chart .axis { stroke: #555; }
.failures { color: #a00; font-size: 13px; }
h4 { margin: 16px 0 4px; } figure.chart-box { margin: 0; width: min-content; }
figcaption { color: #555; font-size: 12px; margin: 4px; }
svg.chart .missing { fill: #a00; }
)css";

std::string now_utc() {
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%d %H:%M UTC", &tm);
  return buffer;
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string render_report(ResultStore& store, const ReportOptions& options) {
  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>{0}</title><style>{1}</style></head><body>\n<h1>{0}</h1>\n"
      "<p class=\"meta\">{2} · generated {3}</p>\n",
      html_escape(options.title), kStyle, html_escape(store.path()), now_utc());
  html += "<h2>Results</h2>\n";
  html +=
      "<p class=\"note\">Final test accuracy, mean ± sample std over trials; img/s is "
      "training throughput.</p>\n";
  html += results_table(store.summaries(options.experiment));
  html += "<h2>Method comparison</h2>\n";
  html +=
      "<p class=\"note\">Per experiment, the methods of each model, quantizer and precision: "
      "their curves overlaid, and each strategy run's difference to the baseline.</p>\n";
  const auto experiments = options.experiment.empty()
                               ? store.experiment_names()
                               : std::vector<std::string>{options.experiment};
  for (const auto& experiment : experiments) html += comparison_section(store, experiment);
  html += "<h2>Training curves</h2>\n";
  const auto runs = store.runs(options.experiment);
  if (runs.empty()) html += "<p class=\"note\">No runs recorded.</p>\n";
  for (const auto& run : runs) {
    const auto trials = store.trials(run.id);
    if (trials.empty()) continue;
    html += run_section(run, trials);
  }
  return html + "</body></html>\n";
}

void write_report(ResultStore& store, const std::string& path, const ReportOptions& options) {
  write_text_atomically(path, render_report(store, options));
}

}  // namespace lowbit
