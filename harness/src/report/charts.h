#pragma once
// The report's SVG drawing, private to report/: the line chart of report.h's Chart (defined in
// charts.cpp) and the dot-and-interval chart of paired differences to a baseline. Everything
// drawn is escaped here; callers pass plain text.

#include <lowbit/report/report.h>
#include <lowbit/results/records.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace lowbit::charts {

/// The i-th colour of the report's palette (8 colours, then round again).
const std::string& palette_color(size_t index);
/// How many colours the palette has before it repeats.
size_t palette_size();

/// One run compared with the baseline: its method label and its paired top-1 difference
/// (nullopt: results/paired.h paired none of its trials, e.g. no trial index finished in both).
struct IntervalRow {
  std::string label;
  std::optional<PairedDifference> difference;
  std::string color = "#1f77b4";
};

struct IntervalChart {
  std::string title, x_label;
  std::vector<IntervalRow> rows;
};

/// An <svg> (class "chart intervals"): per row a <g class="row">, the label above a dot
/// (class "dot", at the mean) and a horizontal line (class "interval", plus "excludes-zero"
/// drawn thicker when the interval lies on one side of 0) from low to high, the values printed
/// as `lowbit table --vs-baseline` prints them ("+1.00 [+0.75, +1.25]†", a lone pair "+1.00
/// n=1"); a vertical line (class "zero") at 0. Dots and lines carry their values unrounded in
/// data-mean, data-low and data-high.
std::string render_interval_chart(const IntervalChart& chart);

/// "+1.00 [+0.75, +1.25]†" (the dagger when the interval excludes 0), or "+1.00" for one pair:
/// the text of a `lowbit table --vs-baseline` cell.
std::string difference_text(const PairedDifference& difference);

}  // namespace lowbit::charts
