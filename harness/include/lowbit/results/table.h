#pragma once
// Paper-style result tables: rows are precision x {Top-1, Top-5}, columns are model x method,
// cells are mean±std over trials, the best cell of each row within a model in bold.

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
};

std::string render_table(const std::vector<RunSummary>& summaries, TableFormat format,
                         const TableOptions& options = {});

}  // namespace lowbit
