#include <lowbit/results/table.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/precision.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace lowbit {
namespace {

constexpr const char* kNoData = "no finished trials\n";

enum class Metric { top1, top5 };
constexpr Metric kMetrics[] = {Metric::top1, Metric::top5};

const char* metric_label(Metric metric) { return metric == Metric::top1 ? "Top-1" : "Top-5"; }
double mean_of(const RunSummary& s, Metric m) {
  return m == Metric::top1 ? s.top1_mean : s.top5_mean;
}
double std_of(const RunSummary& s, Metric m) { return m == Metric::top1 ? s.top1_std : s.top5_std; }
const std::optional<PairedDifference>& difference_of(const RunSummary& s, Metric m) {
  return m == Metric::top1 ? s.top1_difference : s.top5_difference;
}
bool has_differences(const std::vector<RunSummary>& summaries) {
  return std::any_of(summaries.begin(), summaries.end(),
                     [](const RunSummary& s) { return s.top1_difference.has_value(); });
}

struct Column {
  std::string model;
  std::string method;
  bool operator==(const Column& other) const {
    return model == other.model && method == other.method;
  }
};

/// One experiment's summaries arranged as the paper's table.
struct Grid {
  std::string experiment;
  std::vector<Column> columns;        ///< grouped by model, both in first-appearance order
  std::vector<Precision> precisions;  ///< the rows' precisions, widest first
  std::map<std::pair<size_t, std::pair<int, int>>, const RunSummary*> cells;

  const RunSummary* cell(size_t column, const Precision& precision) const {
    auto found = cells.find({column, {precision.weight_bits, precision.activation_bits}});
    return found == cells.end() ? nullptr : found->second;
  }
};

template <typename T>
size_t index_of_or_append(std::vector<T>& items, const T& item) {
  auto found = std::find(items.begin(), items.end(), item);
  if (found != items.end()) return static_cast<size_t>(found - items.begin());
  items.push_back(item);
  return items.size() - 1;
}

// Columns of one model must sit side by side for the model header to span them, so columns are
// ordered by their model's first appearance, then by their own.
std::vector<Column> group_by_model(const std::vector<Column>& columns) {
  std::vector<std::string> models;
  for (const Column& column : columns) index_of_or_append(models, column.model);
  std::vector<Column> grouped;
  for (const std::string& model : models) {
    for (const Column& column : columns) {
      if (column.model == model) grouped.push_back(column);
    }
  }
  return grouped;
}

std::vector<const RunSummary*> of_experiment(const std::vector<RunSummary>& summaries,
                                             const std::string& experiment) {
  std::vector<const RunSummary*> selected;
  for (const RunSummary& summary : summaries) {
    if (summary.experiment == experiment) selected.push_back(&summary);
  }
  return selected;
}

/// Arranges the given summaries. When two summaries share a cell the first one wins (the store
/// lists the newest run first).
Grid make_grid(const std::string& experiment, const std::vector<const RunSummary*>& summaries) {
  Grid grid;
  grid.experiment = experiment;
  std::vector<Column> columns;
  for (const RunSummary* s : summaries) {
    index_of_or_append(columns, Column{s->model, s->method});
    index_of_or_append(grid.precisions, Precision{s->weight_bits, s->activation_bits});
  }
  grid.columns = group_by_model(columns);
  std::sort(grid.precisions.begin(), grid.precisions.end());
  for (const RunSummary* s : summaries) {
    const size_t column = index_of_or_append(grid.columns, Column{s->model, s->method});
    grid.cells.emplace(std::make_pair(column, std::make_pair(s->weight_bits, s->activation_bits)),
                       s);
  }
  return grid;
}

std::vector<std::string> experiments_in_order(const std::vector<RunSummary>& summaries) {
  std::vector<std::string> experiments;
  for (const RunSummary& summary : summaries) index_of_or_append(experiments, summary.experiment);
  return experiments;
}

std::vector<Grid> make_grids(const std::vector<RunSummary>& summaries) {
  std::vector<Grid> grids;
  for (const std::string& experiment : experiments_in_order(summaries)) {
    grids.push_back(make_grid(experiment, of_experiment(summaries, experiment)));
  }
  return grids;
}

/// The trial count shared by every cell of the column, if they share one.
std::optional<int64_t> shared_trials(const Grid& grid, size_t column) {
  std::optional<int64_t> shared;
  for (const Precision& precision : grid.precisions) {
    const RunSummary* s = grid.cell(column, precision);
    if (s == nullptr) continue;
    if (shared && *shared != s->trials) return std::nullopt;
    shared = s->trials;
  }
  return shared;
}

// Compared as displayed, so two cells that read the same are both bold.
double displayed(double value) { return std::round(value * 100.0); }

/// Which cells of a row are bold: the best mean among the columns of each model, where that
/// model has more than one value in the row (a lone value is best of nothing).
std::vector<bool> best_in_row(const Grid& grid, const Precision& precision, Metric metric) {
  std::map<std::string, double> best;
  std::map<std::string, int> values;
  for (size_t c = 0; c < grid.columns.size(); ++c) {
    const RunSummary* s = grid.cell(c, precision);
    if (s == nullptr) continue;
    const double value = displayed(mean_of(*s, metric));
    ++values[grid.columns[c].model];
    auto [it, inserted] = best.emplace(grid.columns[c].model, value);
    if (!inserted) it->second = std::max(it->second, value);
  }
  std::vector<bool> bold(grid.columns.size(), false);
  for (size_t c = 0; c < grid.columns.size(); ++c) {
    const RunSummary* s = grid.cell(c, precision);
    const auto& model = grid.columns[c].model;
    bold[c] = s != nullptr && values[model] > 1 && displayed(mean_of(*s, metric)) == best[model];
  }
  return bold;
}

/// How one format spells the parts of a table.
struct Dialect {
  const char* plus_minus;
  const char* missing;
  std::string (*bold)(const std::string&);
  const char* dagger;  ///< marks a difference whose interval excludes 0
};

/// "mean±std" ("mean" alone for one trial, which has no spread), with the trial count appended
/// when the column has no single one.
std::string cell_text(const Grid& grid, size_t column, const Precision& precision, Metric metric,
                      bool bold, const Dialect& dialect) {
  const RunSummary* s = grid.cell(column, precision);
  if (s == nullptr) return dialect.missing;
  std::string text = s->trials == 1 ? fmt::format("{:.2f}", mean_of(*s, metric))
                                    : fmt::format("{:.2f}{}{:.2f}", mean_of(*s, metric),
                                                  dialect.plus_minus, std_of(*s, metric));
  // With --vs-baseline a run with strategies shows its paired difference to the baseline.
  if (const auto& difference = difference_of(*s, metric)) {
    text = difference->has_interval()
               ? fmt::format("{:+.2f} [{:+.2f}, {:+.2f}]{}", difference->mean, difference->low,
                             difference->high, difference->excludes_zero() ? dialect.dagger : "")
               : fmt::format("{:+.2f}", difference->mean);
  }
  if (bold) text = dialect.bold(text);
  if (!shared_trials(grid, column)) text += fmt::format(" ({})", s->trials);
  return text;
}

/// "480k", "1.2M": a count of images, readable at a glance.
std::string compact_count(double count) {
  if (count >= 1e6) return fmt::format("{:.3g}M", count / 1e6);
  if (count >= 1e3) return fmt::format("{:.3g}k", count / 1e3);
  return fmt::format("{:.0f}", count);
}

/// "12 ep / 480k img" per trial on average; "?" when the trials did not record it.
std::string cost_text(const Grid& grid, size_t column, const Precision& precision,
                      const Dialect& dialect) {
  const RunSummary* s = grid.cell(column, precision);
  if (s == nullptr) return dialect.missing;
  if (s->epochs_trained <= 0) return "?";
  return fmt::format("{:g} ep / {} img", s->epochs_trained, compact_count(s->images_seen));
}

std::vector<std::string> cost_cells(const Grid& grid, const Precision& precision,
                                    const Dialect& dialect) {
  std::vector<std::string> cells{"", "Cost"};
  for (size_t c = 0; c < grid.columns.size(); ++c)
    cells.push_back(cost_text(grid, c, precision, dialect));
  return cells;
}

std::string trials_suffix(const Grid& grid, size_t column) {
  const auto trials = shared_trials(grid, column);
  return trials ? fmt::format(" (n={})", *trials) : "";
}

/// The cells of one table row, formatted and bolded.
std::vector<std::string> row_cells(const Grid& grid, const Precision& precision, Metric metric,
                                   const Dialect& dialect) {
  const std::vector<bool> bold = best_in_row(grid, precision, metric);
  std::vector<std::string> cells;
  for (size_t c = 0; c < grid.columns.size(); ++c) {
    cells.push_back(cell_text(grid, c, precision, metric, bold[c], dialect));
  }
  return cells;
}

/// A label stays on its line in every format: names are checked when an experiment is read, but a
/// database may come from elsewhere, so line breaks and other control characters become spaces.
std::string one_line(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

// ---- Markdown -------------------------------------------------------------------------------

/// Every character that means something inside a table cell or heading (emphasis, code, links,
/// HTML, the cell separator) is backslash-escaped; + - . ! ( ) only mean something at the start
/// of a line or after a bracket, which a cell's text never is.
std::string markdown_escape(const std::string& text) {
  static const std::string kSpecial = "\\`*_[]<>#|~&";
  std::string escaped;
  for (char c : one_line(text)) {
    if (kSpecial.find(c) != std::string::npos) escaped += '\\';
    escaped += c;
  }
  return escaped;
}

std::string markdown_bold(const std::string& text) { return "**" + text + "**"; }

const Dialect kMarkdown{"±", "–", markdown_bold, "†"};

std::string markdown_row(const std::vector<std::string>& cells) {
  return "| " + join(cells, " | ") + " |\n";
}

std::string render_markdown(const Grid& grid, bool with_heading, bool show_cost) {
  std::string out;
  if (with_heading) out += "### " + markdown_escape(grid.experiment) + "\n\n";
  std::vector<std::string> header{"Precision", "Metric"};
  std::vector<std::string> rule{"---", "---"};
  for (size_t c = 0; c < grid.columns.size(); ++c) {
    header.push_back(markdown_escape(grid.columns[c].model + " " + grid.columns[c].method) +
                     trials_suffix(grid, c));
    rule.push_back("---:");
  }
  out += markdown_row(header) + markdown_row(rule);
  for (const Precision& precision : grid.precisions) {
    for (Metric metric : kMetrics) {
      // The precision labels its Top-1 row only, as the paper's merged cell does.
      std::vector<std::string> cells{metric == Metric::top1 ? precision.label() : "",
                                     metric_label(metric)};
      for (std::string& cell : row_cells(grid, precision, metric, kMarkdown)) {
        cells.push_back(std::move(cell));
      }
      out += markdown_row(cells);
    }
    if (show_cost) out += markdown_row(cost_cells(grid, precision, kMarkdown));
  }
  return out;
}

// ---- LaTeX ----------------------------------------------------------------------------------

std::string latex_escape(const std::string& text) {
  std::string escaped;
  for (char c : one_line(text)) {
    switch (c) {
      case '\\':
        escaped += "\\textbackslash{}";
        break;
      case '~':
        escaped += "\\textasciitilde{}";
        break;
      case '^':
        escaped += "\\textasciicircum{}";
        break;
      case '<':
        escaped += "\\textless{}";
        break;
      case '>':
        escaped += "\\textgreater{}";
        break;
      case '|':
        escaped += "\\textbar{}";
        break;
      case '&':
      case '%':
      case '$':
      case '#':
      case '_':
      case '{':
      case '}':
        escaped += '\\';
        escaped += c;
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

std::string latex_bold(const std::string& text) { return "\\textbf{" + text + "}"; }

const Dialect kLatex{"$\\pm$", "--", latex_bold, "$^\\dagger$"};

std::string latex_row(const std::vector<std::string>& cells) {
  return join(cells, " & ") + " \\\\\n";
}

struct ModelSpan {
  std::string model;
  size_t first = 0;  ///< index of its first column
  size_t count = 0;
};

std::vector<ModelSpan> model_spans(const Grid& grid) {
  std::vector<ModelSpan> spans;
  for (size_t c = 0; c < grid.columns.size(); ++c) {
    if (spans.empty() || spans.back().model != grid.columns[c].model) {
      spans.push_back({grid.columns[c].model, c, 0});
    }
    ++spans.back().count;
  }
  return spans;
}

/// The model row (\multicolumn over its methods) and the \cmidrule under each model.
std::string latex_model_header(const Grid& grid) {
  std::vector<std::string> cells{"", ""};
  std::string rules;
  for (const ModelSpan& span : model_spans(grid)) {
    cells.push_back(
        fmt::format("\\multicolumn{{{}}}{{c}}{{{}}}", span.count, latex_escape(span.model)));
    // Table columns count from 1, and two label columns come first.
    rules += fmt::format("\\cmidrule(lr){{{}-{}}}", span.first + 3, span.first + span.count + 2);
  }
  return latex_row(cells) + rules + "\n";
}

std::string render_latex(const Grid& grid, bool with_heading, bool show_cost) {
  std::string out;
  if (with_heading) out += "% " + latex_escape(grid.experiment) + "\n";
  out += "\\begin{tabular}{ll" + std::string(grid.columns.size(), 'c') + "}\n\\toprule\n";
  out += latex_model_header(grid);
  std::vector<std::string> header{"Precision", "Metric"};
  for (size_t c = 0; c < grid.columns.size(); ++c) {
    header.push_back(latex_escape(grid.columns[c].method) + trials_suffix(grid, c));
  }
  out += latex_row(header);
  for (const Precision& precision : grid.precisions) {
    out += "\\midrule\n";
    for (Metric metric : kMetrics) {
      std::vector<std::string> cells{metric == Metric::top1 ? precision.label() : "",
                                     metric_label(metric)};
      for (std::string& cell : row_cells(grid, precision, metric, kLatex)) {
        cells.push_back(std::move(cell));
      }
      out += latex_row(cells);
    }
    if (show_cost) out += latex_row(cost_cells(grid, precision, kLatex));
  }
  return out + "\\bottomrule\n\\end{tabular}\n";
}

// ---- CSV ------------------------------------------------------------------------------------

/// RFC 4180 quoting: a field with a comma, quote or line break is quoted, its quotes doubled.
/// Lines end in \n rather than the RFC's \r\n, as every CSV reader accepts and Unix tools prefer.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string csv_row(const std::vector<std::string>& fields) {
  std::vector<std::string> quoted;
  for (const std::string& field : fields) quoted.push_back(csv_field(field));
  return join(quoted, ",") + "\n";
}

// One header for the whole file, so every experiment's rows share the union of the columns.
std::vector<Column> all_columns(const std::vector<RunSummary>& summaries) {
  std::vector<Column> columns;
  for (const RunSummary& s : summaries) index_of_or_append(columns, Column{s.model, s.method});
  return group_by_model(columns);
}

std::vector<std::string> csv_header(const std::vector<Column>& columns, bool with_experiment,
                                    bool with_differences, bool with_cost) {
  std::vector<std::string> header;
  if (with_experiment) header.push_back("experiment");
  header.push_back("precision");
  header.push_back("metric");
  for (const Column& column : columns) {
    const std::string label = column.model + " " + column.method;
    header.push_back(label + " mean");
    header.push_back(label + " std");
    header.push_back(label + " n");
    if (with_differences) {
      header.push_back(label + " diff");
      header.push_back(label + " diff low");
      header.push_back(label + " diff high");
    }
    if (with_cost) {
      header.push_back(label + " epochs");
      header.push_back(label + " images");
    }
  }
  return header;
}

const RunSummary* find_cell(const Grid& grid, const Column& column, const Precision& precision) {
  auto found = std::find(grid.columns.begin(), grid.columns.end(), column);
  if (found == grid.columns.end()) return nullptr;
  return grid.cell(static_cast<size_t>(found - grid.columns.begin()), precision);
}

// Plain shortest round-trip numbers: machines read these, not people.
std::vector<std::string> csv_values(const RunSummary* s, Metric metric, bool with_differences,
                                    bool with_cost) {
  std::vector<std::string> values{"", "", ""};
  if (s != nullptr) {
    values = {fmt::format("{}", mean_of(*s, metric)), fmt::format("{}", std_of(*s, metric)),
              fmt::format("{}", s->trials)};
  }
  if (with_differences) {
    const auto* difference =
        s != nullptr && difference_of(*s, metric) ? &*difference_of(*s, metric) : nullptr;
    values.push_back(difference ? fmt::format("{}", difference->mean) : "");
    values.push_back(difference && difference->has_interval() ? fmt::format("{}", difference->low)
                                                              : "");
    values.push_back(difference && difference->has_interval() ? fmt::format("{}", difference->high)
                                                              : "");
  }
  if (with_cost) {
    const bool known = s != nullptr && s->epochs_trained > 0;
    values.push_back(known ? fmt::format("{}", s->epochs_trained) : "");
    values.push_back(known ? fmt::format("{}", s->images_seen) : "");
  }
  return values;
}

std::string render_csv(const std::vector<RunSummary>& summaries, bool with_cost) {
  const std::vector<Column> columns = all_columns(summaries);
  const std::vector<Grid> grids = make_grids(summaries);
  const bool with_experiment = grids.size() > 1;
  const bool with_differences = has_differences(summaries);
  std::string out = csv_row(csv_header(columns, with_experiment, with_differences, with_cost));
  for (const Grid& grid : grids) {
    for (const Precision& precision : grid.precisions) {
      for (Metric metric : kMetrics) {
        std::vector<std::string> fields;
        if (with_experiment) fields.push_back(grid.experiment);
        fields.push_back(precision.label());
        fields.push_back(metric_label(metric));
        for (const Column& column : columns) {
          for (std::string& value : csv_values(find_cell(grid, column, precision), metric,
                                               with_differences, with_cost)) {
            fields.push_back(std::move(value));
          }
        }
        out += csv_row(fields);
      }
    }
  }
  return out;
}

/// One sentence per way the table's runs started that is not "from scratch".
std::vector<std::string> starting_points(const std::vector<RunSummary>& summaries) {
  std::vector<std::string> inits;
  for (const RunSummary& s : summaries) {
    if (!s.init.empty()) index_of_or_append(inits, s.init);
  }
  std::vector<std::string> sentences;
  for (const auto& init : inits) {
    if (init == "full_precision") {
      sentences.push_back(
          "Quantized runs start from the finished 32W32A trial of the same model "
          "and quantizer with the same trial index (init: full_precision).");
    } else {
      // The SHA-1 comes from the database, which may come from elsewhere: hex digits or nothing.
      auto sha1 = init.substr(init.find(' ') + 1);
      if (sha1.find_first_not_of("0123456789abcdef") != std::string::npos) sha1 = "(unreadable)";
      sentences.push_back(
          fmt::format("Runs start from the state dict with SHA-1 {} (init: "
                      "checkpoint).",
                      sha1));
    }
  }
  return sentences;
}

/// "dorefa+TS+PP*" under "resnet20" → "+TS+PP" under "resnet20 dorefa*"; no strategy: "Baseline".
RunSummary as_strategy_column(RunSummary summary) {
  std::string method = summary.method;
  const bool all_layers = !method.empty() && method.back() == '*';
  if (all_layers) method.pop_back();
  const auto plus = method.find('+');
  summary.model += " " + method.substr(0, plus) + (all_layers ? "*" : "");
  summary.method = plus == std::string::npos ? "Baseline" : method.substr(plus);
  return summary;
}

/// Strategy columns in the paper's order: under each heading "Baseline" first, then the methods
/// in the order the experiment file lists their strategies, which is the order their runs entered
/// the database (the store lists methods by name: "+PP" before "+TS"). A column's place is its
/// earliest run among the runs the table shows (the first summary of each cell, the newest run),
/// so the old runs of an edited experiment do not decide it. Experiments, headings and the
/// summaries of one column keep their order.
std::vector<RunSummary> in_paper_column_order(std::vector<RunSummary> summaries) {
  using ColumnKey = std::tuple<std::string, std::string, std::string>;
  std::map<std::string, size_t> experiment_rank;
  std::map<std::pair<std::string, std::string>, size_t> heading_rank;
  std::map<ColumnKey, int64_t> first_run;
  std::set<std::tuple<ColumnKey, int, int>> shown;
  for (const RunSummary& s : summaries) {
    experiment_rank.emplace(s.experiment, experiment_rank.size());
    heading_rank.emplace(std::make_pair(s.experiment, s.model), heading_rank.size());
    const ColumnKey column{s.experiment, s.model, s.method};
    if (!shown.emplace(column, s.weight_bits, s.activation_bits).second) continue;
    auto [run, added] = first_run.emplace(column, s.run_id);
    if (!added) run->second = std::min(run->second, s.run_id);
  }
  auto place = [&](const RunSummary& s) {
    return std::make_tuple(
        experiment_rank.at(s.experiment), heading_rank.at(std::make_pair(s.experiment, s.model)),
        s.method != "Baseline", first_run.at(ColumnKey{s.experiment, s.model, s.method}));
  };
  std::stable_sort(summaries.begin(), summaries.end(),
                   [&](const RunSummary& a, const RunSummary& b) { return place(a) < place(b); });
  return summaries;
}

}  // namespace

TableFormat parse_table_format(const std::string& name) {
  if (name == "markdown" || name == "md") return TableFormat::markdown;
  if (name == "latex" || name == "tex") return TableFormat::latex;
  if (name == "csv") return TableFormat::csv;
  throw std::invalid_argument(
      fmt::format("unknown table format \"{}\"; allowed: markdown (md), latex (tex), csv", name));
}

std::string render_table(const std::vector<RunSummary>& given, TableFormat format,
                         const TableOptions& options) {
  if (given.empty()) return kNoData;
  std::vector<RunSummary> summaries = given;
  if (options.strategy_columns) {
    for (auto& summary : summaries) summary = as_strategy_column(summary);
    summaries = in_paper_column_order(std::move(summaries));
  }
  if (format == TableFormat::csv) return render_csv(summaries, options.show_cost);
  const std::vector<Grid> grids = make_grids(summaries);
  const bool with_headings = grids.size() > 1;
  std::string out;
  for (size_t i = 0; i < grids.size(); ++i) {
    if (i > 0) out += "\n";
    out += format == TableFormat::latex
               ? render_latex(grids[i], with_headings, options.show_cost)
               : render_markdown(grids[i], with_headings, options.show_cost);
  }
  // Notes under the table: LaTeX comments, Markdown paragraphs.
  const bool latex = format == TableFormat::latex;
  auto note = [&](const std::string& text) { out += (latex ? "% " : "\n") + text + "\n"; };
  if (has_differences(summaries)) {
    const auto reference =
        options.reference_method.empty()
            ? std::string(
                  "Runs with strategies show their difference to the baseline of the same "
                  "model and quantizer")
            : fmt::format("Runs show their difference to {} of the same model and precision",
                          latex ? latex_escape(options.reference_method)
                                : markdown_escape(options.reference_method));
    note(
        fmt::format("{}, paired by trial, with its 95% t-interval; {} marks an interval that "
                    "excludes 0.",
                    reference, latex ? "$^\\dagger$" : "†"));
  }
  for (const auto& init : starting_points(summaries)) note(init);
  return out;
}

}  // namespace lowbit
