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

std::string render_table(const std::vector<RunSummary>& summaries, TableFormat format);

}  // namespace lowbit
