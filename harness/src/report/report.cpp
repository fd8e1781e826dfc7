#include <lowbit/report/report.h>
#include <lowbit/util/atomic_file.h>

#include <lowbit/experiment/experiment.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

namespace lowbit {
namespace {

// Chart geometry (SVG user units).
constexpr double kWidth = 520, kHeight = 260;
constexpr double kLeft = 56, kRight = 150, kTop = 28, kBottom = 42;

const std::vector<std::string> kPalette{"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                        "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

struct Range {
  double low = std::numeric_limits<double>::infinity();
  double high = -std::numeric_limits<double>::infinity();
  void add(double value) {
    if (!std::isfinite(value)) return;
    low = std::min(low, value);
    high = std::max(high, value);
  }
  bool empty() const { return low > high; }
};

/// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `count` ticks over the range.
double tick_step(double span, int count) {
  const double raw = span / count;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double factor : {1.0, 2.0, 5.0, 10.0}) {
    if (raw <= factor * power) return factor * power;
  }
  return 10 * power;
}

/// Widens a range to whole tick steps (and to a non-empty span); `step` is the tick step.
Range padded(Range range, int ticks, double& step) {
  if (range.empty()) {
    step = 0.2;
    return {0, 1};
  }
  if (range.high - range.low < 1e-9) {
    // A flat curve: centre it in a span of a few whole ticks.
    const double pad = std::max(1.0, std::abs(range.high) * 0.05);
    range = {range.low - pad, range.high + pad};
  }
  step = tick_step(range.high - range.low, ticks);
  return {std::floor(range.low / step) * step, std::ceil(range.high / step) * step};
}

std::string number(double value) {
  if (std::abs(value) < 1e-9) return "0";  // not "-0" from accumulated steps
  if (std::abs(value) >= 1000 || value == std::floor(value)) return fmt::format("{:.0f}", value);
  return fmt::format("{:.3g}", value);
}

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
      trials.size() > 1 ? fmt::format("{}, mean of {}", who, trials.size()) : who, kPalette[0],
      false, true);
  add_mean(chart, trials, teacher, "teacher", kPalette[1], true, true);
  if (trials.size() > 1) chart.series.push_back({"each trial", {}, {}, "#7f9fbf", 1.0});
  return div_chart(chart);
}

std::string bits_chart(const std::vector<TrialRecord>& trials) {
  Chart chart{"Bit-width schedule", "epoch", "bits", {}, {}};
  const auto& epochs = trials.front().epochs;
  ChartSeries weights{"weight bits", {}, {}, kPalette[0], 2.5, false, true};
  ChartSeries activations{"activation bits", {}, {}, kPalette[1], 2.0, true, true};
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
        trials.size() > 1 ? "mean" : name, kPalette[2], false, true);
    html += div_chart(chart);
  }
  return html;
}

std::string throughput_chart(const std::vector<TrialRecord>& trials) {
  Chart chart{"Training throughput", "epoch", "images / s", {}, {}};
  add_mean(
      chart, trials,
      [](const EpochRecord& e) { return std::optional<double>(e.images_per_second); }, "img/s",
      kPalette[3], false, true);
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

std::string run_section(const StoredRun& run, const std::vector<TrialRecord>& all_trials) {
  std::vector<TrialRecord> finished;
  std::string failures;
  for (const auto& trial : all_trials) {
    if (trial.status == TrialStatus::finished && !trial.epochs.empty()) finished.push_back(trial);
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

std::string render_svg_chart(const Chart& chart) {
  Range xs, ys;
  for (const auto& s : chart.series) {
    for (double x : s.x) xs.add(x);
    for (double y : s.y) ys.add(y);
  }
  for (const auto& b : chart.bands) {
    for (double v : b.low) ys.add(v);
    for (double v : b.high) ys.add(v);
  }
  double x_step = 1, y_step = 1;
  const Range x_range = padded(xs, 6, x_step);
  const Range y_range = padded(ys, 5, y_step);
  x_step = std::max(1.0, x_step);  // epochs are whole numbers
  const double plot_w = kWidth - kLeft - kRight;
  const double plot_h = kHeight - kTop - kBottom;
  auto px = [&](double x) {
    return kLeft + (x - x_range.low) / (x_range.high - x_range.low) * plot_w;
  };
  auto py = [&](double y) {
    return kTop + plot_h - (y - y_range.low) / (y_range.high - y_range.low) * plot_h;
  };

  std::ostringstream svg;
  svg << fmt::format(
      "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" role=\"img\" aria-label=\"{2}\">\n",
      kWidth, kHeight, html_escape(chart.title));
  svg << fmt::format("<text class=\"title\" x=\"{}\" y=\"16\">{}</text>\n", kLeft,
                     html_escape(chart.title));
  // Grid and tick labels.
  for (double y = std::ceil(y_range.low / y_step - 1e-9) * y_step;
       y <= y_range.high + y_step * 1e-6; y += y_step) {
    svg << fmt::format(
        "<line class=\"grid\" x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
        kLeft, kLeft + plot_w, py(y), py(y), kLeft - 6, py(y) + 4, number(y));
  }
  for (double x = std::ceil(x_range.low / x_step) * x_step; x <= x_range.high + 1e-9; x += x_step) {
    svg << fmt::format(
        "<line class=\"grid\" x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
        px(x), px(x), kTop, kTop + plot_h, px(x), kTop + plot_h + 14, number(x));
  }
  svg << fmt::format(
      "<line class=\"axis\" x1=\"{0}\" x2=\"{0}\" y1=\"{1}\" y2=\"{2}\"/>"
      "<line class=\"axis\" x1=\"{0}\" x2=\"{3}\" y1=\"{2}\" y2=\"{2}\"/>\n",
      kLeft, kTop, kTop + plot_h, kLeft + plot_w);
  svg << fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                     kLeft + plot_w / 2, kHeight - 8, html_escape(chart.x_label));
  svg << fmt::format(
      "<text transform=\"translate(14,{:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
      kTop + plot_h / 2, html_escape(chart.y_label));

  for (const auto& band : chart.bands) {
    if (band.x.empty()) continue;
    std::string points;
    for (size_t i = 0; i < band.x.size(); ++i)
      points += fmt::format("{:.1f},{:.1f} ", px(band.x[i]), py(band.high[i]));
    for (size_t i = band.x.size(); i-- > 0;)
      points += fmt::format("{:.1f},{:.1f} ", px(band.x[i]), py(band.low[i]));
    svg << fmt::format(
        "<polygon class=\"band\" points=\"{}\" fill=\"{}\" fill-opacity=\"0.18\" "
        "stroke=\"none\"/>\n",
        points, band.color);
  }
  int legend_row = 0;
  for (const auto& s : chart.series) {
    std::string points;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (s.step && i > 0) points += fmt::format("{:.1f},{:.1f} ", px(s.x[i]), py(s.y[i - 1]));
      points += fmt::format("{:.1f},{:.1f} ", px(s.x[i]), py(s.y[i]));
    }
    const std::string dash = s.dashed ? " stroke-dasharray=\"6 4\"" : "";
    if (s.x.size() > 1) {
      svg << fmt::format(
          "<polyline class=\"series\" points=\"{}\" fill=\"none\" stroke=\"{}\" "
          "stroke-width=\"{}\"{}><title>{}</title></polyline>\n",
          points, s.color, s.width, dash, html_escape(s.label));
    } else if (s.x.size() == 1) {
      svg << fmt::format(
          "<circle class=\"series\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\">"
          "<title>{}</title></circle>\n",
          px(s.x[0]), py(s.y[0]), 1.5 + s.width, s.color, html_escape(s.label));
    }
    if (!s.legend) continue;
    const double ly = kTop + 8 + 16 * legend_row++;
    const double lx = kLeft + plot_w + 10;
    svg << fmt::format(
        "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
        "stroke-width=\"{}\"{}/><text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
        lx, lx + 20, ly, ly, s.color, s.width, dash, lx + 24, ly + 4, html_escape(s.label));
  }
  svg << "</svg>";
  return svg.str();
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
