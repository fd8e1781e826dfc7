#include <lowbit/results/table.h>

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace {

using lowbit::render_table;
using lowbit::RunSummary;
using lowbit::TableFormat;

RunSummary summary(const std::string& model, const std::string& method, int bits, int64_t trials,
                   double top1, double top1_std, double top5, double top5_std,
                   const std::string& experiment = "table1") {
  RunSummary s;
  s.experiment = experiment;
  s.model = model;
  s.method = method;
  s.weight_bits = bits;
  s.activation_bits = bits;
  s.trials = trials;
  s.top1_mean = top1;
  s.top1_std = top1_std;
  s.top5_mean = top5;
  s.top5_std = top5_std;
  return s;
}

// One model, two methods, two precisions; dorefa+sp was not run at 4W4A. Given out of order to
// show that rows are sorted widest precision first.
std::vector<RunSummary> one_model_two_methods() {
  return {summary("ResNet-20", "dorefa", 2, 3, 60.004, 0.5, 85.1, 0.25),
          summary("ResNet-20", "dorefa+sp", 2, 3, 61.234, 0.056, 84.9, 0.3),
          summary("ResNet-20", "dorefa", 4, 3, 68.5, 0.1, 88.0, 0.2)};
}

}  // namespace

TEST_CASE("table formats parse by name and alias", "[table]") {
  CHECK(lowbit::parse_table_format("markdown") == TableFormat::markdown);
  CHECK(lowbit::parse_table_format("md") == TableFormat::markdown);
  CHECK(lowbit::parse_table_format("latex") == TableFormat::latex);
  CHECK(lowbit::parse_table_format("tex") == TableFormat::latex);
  CHECK(lowbit::parse_table_format("csv") == TableFormat::csv);
  CHECK_THROWS_AS(lowbit::parse_table_format("html"), std::invalid_argument);
  CHECK_THROWS_WITH(lowbit::parse_table_format("html"),
                    Catch::Contains("html") && Catch::Contains("markdown") &&
                        Catch::Contains("latex") && Catch::Contains("csv"));
}

TEST_CASE("an empty table says so in one line", "[table]") {
  for (TableFormat format : {TableFormat::markdown, TableFormat::latex, TableFormat::csv}) {
    CHECK(render_table({}, format) == "no finished trials\n");
  }
}

TEST_CASE("markdown table: rows by precision, best per row bold, missing cells dashed", "[table]") {
  // A value alone in its row is best of nothing: not bold.
  const std::string expected =
      "| Precision | Metric | ResNet-20 dorefa (n=3) | ResNet-20 dorefa+sp (n=3) |\n"
      "| --- | --- | ---: | ---: |\n"
      "| 4W4A | Top-1 | 68.50±0.10 | – |\n"
      "|  | Top-5 | 88.00±0.20 | – |\n"
      "| 2W2A | Top-1 | 60.00±0.50 | **61.23±0.06** |\n"
      "|  | Top-5 | **85.10±0.25** | 84.90±0.30 |\n";
  CHECK(render_table(one_model_two_methods(), TableFormat::markdown) == expected);
}

TEST_CASE("markdown table: bold within each model, ties all bold, mixed trial counts", "[table]") {
  const std::vector<RunSummary> summaries = {
      summary("ResNet-18", "dorefa", 2, 3, 64.666, 0.1, 85.0, 0.1),
      summary("ResNet-50", "dorefa", 2, 3, 50.0, 0.2, 80.0, 0.2),
      summary("ResNet-50", "dorefa", 4, 1, 55.0, 0.0, 81.0, 0.0),
      // Reads the same as 64.666 at two decimals: both are best.
      summary("ResNet-18", "dorefa+kd", 2, 3, 64.67, 0.3, 86.0, 0.3)};
  // Columns are grouped by model even though ResNet-50 appears before ResNet-18's second method.
  // Bold compares one model's methods, so ResNet-50's lone column is never bold. Its cells have
  // different trial counts, so each cell carries its own; one trial shows no spread.
  const std::string expected =
      "| Precision | Metric | ResNet-18 dorefa (n=3) | ResNet-18 dorefa+kd (n=3) | "
      "ResNet-50 dorefa |\n"
      "| --- | --- | ---: | ---: | ---: |\n"
      "| 4W4A | Top-1 | – | – | 55.00 (1) |\n"
      "|  | Top-5 | – | – | 81.00 (1) |\n"
      "| 2W2A | Top-1 | **64.67±0.10** | **64.67±0.30** | 50.00±0.20 (3) |\n"
      "|  | Top-5 | 85.00±0.10 | **86.00±0.30** | 80.00±0.20 (3) |\n";
  CHECK(render_table(summaries, TableFormat::markdown) == expected);
}

TEST_CASE("markdown escapes table syntax in labels", "[table]") {
  const std::string table =
      render_table({summary("a|b", "x*y", 2, 1, 1.0, 0.0, 2.0, 0.0)}, TableFormat::markdown);
  CHECK_THAT(table, Catch::StartsWith("| Precision | Metric | a\\|b x\\*y (n=1) |\n"));
}

TEST_CASE("one table per experiment, each with a heading", "[table]") {
  const std::vector<RunSummary> summaries = {
      summary("ResNet-20", "dorefa", 2, 1, 60.0, 0.0, 85.0, 0.0, "cifar"),
      summary("AlexNet", "dorefa", 2, 1, 63.89, 0.0, 88.0, 0.0, "alexnet")};
  const std::string expected =
      "### cifar\n"
      "\n"
      "| Precision | Metric | ResNet-20 dorefa (n=1) |\n"
      "| --- | --- | ---: |\n"
      "| 2W2A | Top-1 | 60.00 |\n"
      "|  | Top-5 | 85.00 |\n"
      "\n"
      "### alexnet\n"
      "\n"
      "| Precision | Metric | AlexNet dorefa (n=1) |\n"
      "| --- | --- | ---: |\n"
      "| 2W2A | Top-1 | 63.89 |\n"
      "|  | Top-5 | 88.00 |\n";
  CHECK(render_table(summaries, TableFormat::markdown) == expected);

  const std::string latex = render_table(summaries, TableFormat::latex);
  CHECK_THAT(latex, Catch::StartsWith("% cifar\n\\begin{tabular}"));
  CHECK_THAT(latex, Catch::Contains("\n% alexnet\n\\begin{tabular}"));
}

TEST_CASE("latex table: booktabs, model groups, escaping", "[table]") {
  const std::vector<RunSummary> summaries = {
      summary("Res_Net#1", "a_b", 2, 3, 70.0, 0.1, 89.0, 0.3),
      summary("Res_Net#1", "c%d", 2, 3, 69.0, 0.2, 90.0, 0.4),
      summary("Res_Net#1", "a_b", 4, 3, 75.0, 0.0, 92.0, 0.0)};
  const std::string expected =
      "\\begin{tabular}{llcc}\n"
      "\\toprule\n"
      " &  & \\multicolumn{2}{c}{Res\\_Net\\#1} \\\\\n"
      "\\cmidrule(lr){3-4}\n"
      "Precision & Metric & a\\_b (n=3) & c\\%d (n=3) \\\\\n"
      "\\midrule\n"
      "4W4A & Top-1 & 75.00$\\pm$0.00 & -- \\\\\n"
      " & Top-5 & 92.00$\\pm$0.00 & -- \\\\\n"
      "\\midrule\n"
      "2W2A & Top-1 & \\textbf{70.00$\\pm$0.10} & 69.00$\\pm$0.20 \\\\\n"
      " & Top-5 & 89.00$\\pm$0.30 & \\textbf{90.00$\\pm$0.40} \\\\\n"
      "\\bottomrule\n"
      "\\end{tabular}\n";
  CHECK(render_table(summaries, TableFormat::latex) == expected);
}

TEST_CASE("latex escapes every special character", "[table]") {
  const std::string table =
      render_table({summary("m", "&%$#_{}~^\\", 2, 1, 1.0, 0.0, 2.0, 0.0)}, TableFormat::latex);
  CHECK_THAT(table, Catch::Contains("Precision & Metric & "
                                    "\\&\\%\\$\\#\\_\\{\\}\\textasciitilde{}"
                                    "\\textasciicircum{}\\textbackslash{} (n=1) \\\\\n"));
}

TEST_CASE("latex spans each model over its own methods", "[table]") {
  const std::vector<RunSummary> summaries = {
      summary("ResNet-18", "dorefa", 2, 1, 64.0, 0.0, 85.0, 0.0),
      summary("ResNet-50", "dorefa", 2, 1, 70.0, 0.0, 89.0, 0.0),
      summary("ResNet-50", "dorefa+sp", 2, 1, 72.0, 0.0, 90.0, 0.0)};
  const std::string table = render_table(summaries, TableFormat::latex);
  CHECK_THAT(table, Catch::Contains("\\begin{tabular}{llccc}\n"));
  CHECK_THAT(table, Catch::Contains(" &  & \\multicolumn{1}{c}{ResNet-18} & "
                                    "\\multicolumn{2}{c}{ResNet-50} \\\\\n"
                                    "\\cmidrule(lr){3-3}\\cmidrule(lr){4-5}\n"));
}

TEST_CASE("csv table: plain numbers, empty missing cells, RFC 4180 quoting", "[table]") {
  const std::vector<RunSummary> summaries = {
      summary("ResNet-20", "dorefa,sp", 2, 2, 71.0, 1.4142135623730951, 90.5, 0.25),
      summary("ResNet-20", "say \"hi\"", 4, 1, 75.0, 0.0, 92.0, 0.0)};
  const std::string expected =
      "precision,metric,"
      "\"ResNet-20 dorefa,sp mean\",\"ResNet-20 dorefa,sp std\",\"ResNet-20 dorefa,sp n\","
      "\"ResNet-20 say \"\"hi\"\" mean\",\"ResNet-20 say \"\"hi\"\" std\","
      "\"ResNet-20 say \"\"hi\"\" n\"\n"
      "4W4A,Top-1,,,,75,0,1\n"
      "4W4A,Top-5,,,,92,0,1\n"
      "2W2A,Top-1,71,1.4142135623730951,2,,,\n"
      "2W2A,Top-5,90.5,0.25,2,,,\n";
  CHECK(render_table(summaries, TableFormat::csv) == expected);
}

TEST_CASE("csv with several experiments leads with an experiment column", "[table]") {
  const std::vector<RunSummary> summaries = {
      summary("ResNet-20", "dorefa", 2, 1, 60.0, 0.0, 85.0, 0.0, "cifar"),
      summary("AlexNet", "dorefa", 2, 1, 63.5, 0.0, 88.0, 0.0, "alexnet")};
  const std::string expected =
      "experiment,precision,metric,ResNet-20 dorefa mean,ResNet-20 dorefa std,ResNet-20 dorefa n,"
      "AlexNet dorefa mean,AlexNet dorefa std,AlexNet dorefa n\n"
      "cifar,2W2A,Top-1,60,0,1,,,\n"
      "cifar,2W2A,Top-5,85,0,1,,,\n"
      "alexnet,2W2A,Top-1,,,,63.5,0,1\n"
      "alexnet,2W2A,Top-5,,,,88,0,1\n";
  CHECK(render_table(summaries, TableFormat::csv) == expected);
}

TEST_CASE("strategy columns: Baseline and +TS+PP under model and quantizer, bold per heading",
          "[table]") {
  const std::vector<RunSummary> summaries{
      summary("resnet20", "dorefa", 2, 2, 60.0, 0.5, 85.0, 0.2),
      summary("resnet20", "dorefa+TS+PP", 2, 2, 62.0, 0.5, 86.0, 0.2),
      summary("resnet20", "dorefa+SP+KD*", 2, 2, 58.0, 0.5, 84.0, 0.2)};
  const auto text = render_table(summaries, TableFormat::markdown, lowbit::TableOptions{true});
  INFO(text);
  CHECK(text.find("resnet20 dorefa Baseline") != std::string::npos);
  CHECK(text.find("resnet20 dorefa +TS+PP") != std::string::npos);
  CHECK(text.find("resnet20 dorefa\\* +SP+KD") != std::string::npos);  // markdown-escaped
  // The all-layers run is its own heading, alone there, so it is not bold.
  CHECK(text.find("**62.00±0.50**") != std::string::npos);
  CHECK(text.find("58.00±0.50") != std::string::npos);
  CHECK(text.find("**58.00±0.50**") == std::string::npos);
  CHECK(text.find("**60.00±0.50**") == std::string::npos);
  const auto plain = render_table(summaries, TableFormat::markdown);
  CHECK(plain.find("Baseline") == std::string::npos);
}

TEST_CASE("strategy columns: Baseline first, then the methods in the experiment's order",
          "[table]") {
  // The store lists runs by method name, newest first within a cell. The experiment was edited:
  // its first edition listed [[], [PP], [TS]] (runs 1-3), the current one [[TS], [PP], [TS, PP],
  // []] (runs 4-7). The columns follow the current runs: +TS before +PP, though both "+PP" and
  // the old runs come first, and Baseline leads although its run is the last.
  auto run = [](int64_t id, const std::string& method, double top1) {
    RunSummary s = summary("resnet20", method, 2, 1, top1, 0.0, 90.0, 0.0);
    s.run_id = id;
    return s;
  };
  const std::vector<RunSummary> summaries{run(7, "dorefa", 60.0),      run(1, "dorefa", 50.0),
                                          run(5, "dorefa+PP", 62.0),   run(2, "dorefa+PP", 52.0),
                                          run(4, "dorefa+TS", 61.0),   run(3, "dorefa+TS", 51.0),
                                          run(6, "dorefa+TS+PP", 63.0)};
  const std::string expected =
      "| Precision | Metric | resnet20 dorefa Baseline (n=1) | resnet20 dorefa +TS (n=1) | "
      "resnet20 dorefa +PP (n=1) | resnet20 dorefa +TS+PP (n=1) |\n"
      "| --- | --- | ---: | ---: | ---: | ---: |\n"
      "| 2W2A | Top-1 | 60.00 | 61.00 | 62.00 | **63.00** |\n"
      "|  | Top-5 | **90.00** | **90.00** | **90.00** | **90.00** |\n";
  const auto text = render_table(summaries, TableFormat::markdown, lowbit::TableOptions{true});
  CHECK(text == expected);
  // CSV heads its columns in the same order.
  const auto csv = render_table(summaries, TableFormat::csv, lowbit::TableOptions{true});
  CHECK_THAT(csv, Catch::StartsWith("precision,metric,resnet20 dorefa Baseline mean,"));
  CHECK(csv.find("resnet20 dorefa +TS mean") < csv.find("resnet20 dorefa +PP mean"));
  CHECK(csv.find("resnet20 dorefa +PP mean") < csv.find("resnet20 dorefa +TS+PP mean"));
  // Without strategy columns the methods keep the given order.
  const auto plain = render_table(summaries, TableFormat::markdown);
  CHECK(plain.find("dorefa+PP") < plain.find("dorefa+TS "));
}
