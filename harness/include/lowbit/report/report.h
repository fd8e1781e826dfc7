#pragma once
// `lowbit report`: one self-contained HTML page from the results database, for looking at rather
// than grepping. Result tables (mean ± std over trials per model, method and precision); then per
// experiment, for each model, quantizer and precision with several methods (the baseline and its
// strategy variants), their test top-1 curves overlaid (mean over trials with a min..max band)
// and each strategy run's final top-1 difference to the baseline, paired by trial with its 95%
// t-interval as `lowbit table --vs-baseline` computes it (results/paired.h). Then per run: test
// top-1 against epoch for every trial with the mean and a min..max band (the teacher's curve
// beside the student's when epochs carry "teacher_top1", as KD records it), the bit-width schedule
// (weight and activation bits per epoch, which progressive strategies change), every other
// numeric per-epoch extra a strategy recorded (e.g. a quantized fraction), and training
// throughput. Charts are inline SVG drawn here (src/report/charts.cpp): no scripts,
// fonts or network needed.

#include <lowbit/results/store.h>

#include <string>
#include <vector>

namespace lowbit {

struct ReportOptions {
  std::string experiment;  ///< only this experiment ("" for all)
  std::string title = "lowbit results";
};

/// One line or step series of a chart.
struct ChartSeries {
  std::string label;
  std::vector<double> x, y;
  std::string color = "#1f77b4";
  double width = 2.0;
  bool dashed = false;
  bool step = false;  ///< draw as a staircase (values hold until the next x)
  bool legend = true;
};

/// A shaded area between two curves over the same x.
struct ChartBand {
  std::vector<double> x, low, high;
  std::string color = "#1f77b4";
};

struct Chart {
  std::string title, x_label, y_label;
  std::vector<ChartBand> bands;
  std::vector<ChartSeries> series;
  bool legend_below = false;  ///< one legend row per series under the plot (for long labels)
};

/// An <svg> element (class "chart") drawing the chart with axes, ticks and a legend.
std::string render_svg_chart(const Chart& chart);

/// The whole page.
std::string render_report(ResultStore& store, const ReportOptions& options);

/// Renders the page and writes it to `path` through a temporary file renamed into place.
void write_report(ResultStore& store, const std::string& path, const ReportOptions& options);

/// Escapes &, <, >, " and ' for HTML text and attributes.
std::string html_escape(const std::string& text);

}  // namespace lowbit
