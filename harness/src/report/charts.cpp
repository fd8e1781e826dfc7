#include "report/charts.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>

namespace lowbit {
namespace {

// Line chart geometry (SVG user units); the legend sits right of the plot or below it.
constexpr double kWidth = 520, kHeight = 260;
constexpr double kLeft = 56, kRight = 150, kTop = 28, kBottom = 42;
constexpr double kLegendRow = 16, kRightBesideLegendBelow = 16;

// Dot-and-interval chart geometry: rows of a label above a dot and its interval, the printed
// values right of the plot, the axis under the last row.
constexpr double kIntervalWidth = 580, kIntervalMargin = 16, kIntervalValues = 200;
constexpr double kIntervalTop = 30, kIntervalRow = 36, kIntervalAxisGap = 6;

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

/// Ticks of a padded range: its multiples of `step`.
std::vector<double> ticks(const Range& range, double step) {
  std::vector<double> out;
  for (double t = std::ceil(range.low / step - 1e-9) * step; t <= range.high + step * 1e-6;
       t += step) {
    out.push_back(t);
  }
  return out;
}

/// The interval of one row: a horizontal line from low to high with end caps.
std::string interval_line(const PairedDifference& d, double x_low, double x_high, double y,
                          const std::string& color) {
  const bool marked = d.excludes_zero();
  std::string svg = fmt::format(
      "<line class=\"interval{}\" x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" "
      "stroke=\"{}\" stroke-width=\"{}\" data-low=\"{}\" data-high=\"{}\"><title>95% interval "
      "[{:+.2f}, {:+.2f}]{}</title></line>",
      marked ? " excludes-zero" : "", x_low, x_high, y, y, color, marked ? 4 : 2, d.low, d.high,
      d.low, d.high, marked ? ", excludes 0" : "");
  for (double x : {x_low, x_high}) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\" stroke=\"{3}\" "
        "stroke-width=\"2\"/>",
        x, y - 5, y + 5, color);
  }
  return svg;
}

/// One row: the label, then the dot and its interval with the values printed to the right.
std::string interval_row(const charts::IntervalRow& row, double top, double values_x,
                         const std::function<double(double)>& px) {
  const double y = top + 25;
  std::string svg = fmt::format("<g class=\"row\"><text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>",
                                kIntervalMargin, top + 11, html_escape(row.label));
  if (!row.difference) {
    return svg + fmt::format(
                     "<text class=\"missing\" x=\"{:.1f}\" y=\"{:.1f}\">no paired trials with a "
                     "baseline of the same configuration</text></g>\n",
                     kIntervalMargin, y + 4);
  }
  const auto& d = *row.difference;
  if (d.has_interval()) svg += interval_line(d, px(d.low), px(d.high), y, row.color);
  svg += fmt::format(
      "<circle class=\"dot\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4.5\" fill=\"{}\" stroke=\"#fff\" "
      "data-mean=\"{}\" data-pairs=\"{}\"><title>{}: mean difference {:+.2f}, n={}</title>"
      "</circle>",
      px(d.mean), y, row.color, d.mean, d.pairs, html_escape(row.label), d.mean, d.pairs);
  svg += fmt::format("<text class=\"value\" x=\"{:.1f}\" y=\"{:.1f}\"{}>{} n={}</text></g>\n",
                     values_x, y + 4, d.excludes_zero() ? " font-weight=\"bold\"" : "",
                     charts::difference_text(d), d.pairs);
  return svg;
}

/// The opening <svg> of a chart, sized and labelled for screen readers, and its title.
void open_svg(std::ostream& svg, const char* css_class, double width, double height,
              const std::string& title, double title_x) {
  svg << fmt::format(
      "<svg class=\"{3}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" role=\"img\" aria-label=\"{2}\">\n",
      width, height, html_escape(title), css_class);
  svg << fmt::format("<text class=\"title\" x=\"{}\" y=\"16\">{}</text>\n", title_x,
                     html_escape(title));
}

}  // namespace

namespace charts {

const std::string& palette_color(size_t index) { return kPalette[index % kPalette.size()]; }

size_t palette_size() { return kPalette.size(); }

std::string difference_text(const PairedDifference& d) {
  if (!d.has_interval()) return fmt::format("{:+.2f}", d.mean);
  return fmt::format("{:+.2f} [{:+.2f}, {:+.2f}]{}", d.mean, d.low, d.high,
                     d.excludes_zero() ? "†" : "");
}

std::string render_interval_chart(const IntervalChart& chart) {
  Range xs;
  xs.add(0);
  for (const auto& row : chart.rows) {
    if (!row.difference) continue;
    xs.add(row.difference->mean);
    xs.add(row.difference->low);
    xs.add(row.difference->high);
  }
  double step = 1;
  const Range range = padded(xs, 5, step);
  const double plot_left = kIntervalMargin;
  const double plot_right = kIntervalWidth - kIntervalValues;
  const std::function<double(double)> px = [&](double x) {
    return plot_left + (x - range.low) / (range.high - range.low) * (plot_right - plot_left);
  };
  const double axis_y =
      kIntervalTop + kIntervalRow * static_cast<double>(chart.rows.size()) + kIntervalAxisGap;
  const double height = axis_y + 40;

  std::ostringstream svg;
  open_svg(svg, "chart intervals", kIntervalWidth, height, chart.title, kIntervalMargin);
  for (double x : ticks(range, step)) {
    svg << fmt::format(
        "<line class=\"grid\" x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\"/>"
        "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>\n",
        px(x), kIntervalTop, axis_y, axis_y + 14, number(x));
  }
  svg << fmt::format(
      "<line class=\"axis\" x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\"/>\n",
      plot_left, plot_right, axis_y);
  svg << fmt::format(
      "<line class=\"zero\" x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\" "
      "stroke=\"#444\" stroke-width=\"1.5\"/>\n",
      px(0), kIntervalTop - 4, axis_y);
  svg << fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                     (plot_left + plot_right) / 2, height - 8, html_escape(chart.x_label));
  for (size_t i = 0; i < chart.rows.size(); ++i) {
    svg << interval_row(chart.rows[i], kIntervalTop + kIntervalRow * static_cast<double>(i),
                        plot_right + 10, px);
  }
  svg << "</svg>";
  return svg.str();
}

}  // namespace charts

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
  const auto legend_rows = std::count_if(chart.series.begin(), chart.series.end(),
                                         [](const auto& s) { return s.legend; });
  const double height =
      chart.legend_below ? kHeight + 8 + kLegendRow * static_cast<double>(legend_rows) : kHeight;
  const double plot_w = kWidth - kLeft - (chart.legend_below ? kRightBesideLegendBelow : kRight);
  const double plot_h = kHeight - kTop - kBottom;
  auto px = [&](double x) {
    return kLeft + (x - x_range.low) / (x_range.high - x_range.low) * plot_w;
  };
  auto py = [&](double y) {
    return kTop + plot_h - (y - y_range.low) / (y_range.high - y_range.low) * plot_h;
  };

  std::ostringstream svg;
  open_svg(svg, "chart", kWidth, height, chart.title, kLeft);
  // Grid and tick labels.
  for (double y : ticks(y_range, y_step)) {
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
    const double row = legend_row++;
    const double ly = chart.legend_below ? kHeight + 4 + kLegendRow * row : kTop + 8 + 16 * row;
    const double lx = chart.legend_below ? kLeft : kLeft + plot_w + 10;
    svg << fmt::format(
        "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
        "stroke-width=\"{}\"{}/><text class=\"legend\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n",
        lx, lx + 20, ly, ly, s.color, s.width, dash, lx + 24, ly + 4, html_escape(s.label));
  }
  svg << "</svg>";
  return svg.str();
}

}  // namespace lowbit
