#pragma once
// Paper-style result tables: rows are precision x {Top-1, Top-5}, columns are model x method,
// cells are mean±std over trials (the mean alone for one trial), the best cell of each row within
// a model in bold where the model has more than one value in the row. A summary that carries its
// paired difference to the baseline (add_baseline_differences) shows that difference instead:
// "+1.23 [+0.45, +2.01]†", † when the 95% interval excludes 0.

#include <lowbit/results/records.h>

#include <string>
#include <vector>

namespace lowbit {

enum class TableFormat { markdown, latex, csv };

/// Parses "markdown"/"md", "latex"/"tex", "csv"; throws std::invalid_argument listing them.
TableFormat parse_table_format(const std::string& name);

struct TableOptions {
  /// Paper-style strategy columns: method "dorefa+TS+PP" becomes column "+TS+PP" (a method
  /// without strategies "Baseline") under the heading "<model> dorefa"; bold picks the best of
  /// each row within that heading.
  bool strategy_columns = false;
  /// Read by the CLI, which then fills the summaries' baseline differences (results/paired.h);
  /// render_table shows a difference wherever a summary has one.
  bool vs_baseline = false;
  /// Read by the CLI too (`--vs METHOD`): the differences are to the run of this method label
  /// (results/paired.h add_method_differences) instead of the baseline; the note says so.
  std::string reference_method;
  /// A "Cost" row under each precision: the mean epochs trained and training images seen per
  /// trial ("?" for trials recorded before lowbit counted them); CSV gets two columns per column.
  bool show_cost = false;
};

std::string render_table(const std::vector<RunSummary>& summaries, TableFormat format,
                         const TableOptions& options = {});

}  // namespace lowbit
