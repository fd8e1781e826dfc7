#include <lowbit/plugins/support_table.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/util/exception_message.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace lowbit {

std::vector<SupportCell> quantizer_support(const Registry& registry) {
  std::vector<SupportCell> cells;
  const auto models = registry.names(ComponentKind::model);
  const auto quantizers = registry.names(ComponentKind::quantizer);
  std::vector<ModelStructure> structures;
  for (const auto& model : models) structures.push_back(describe_model(registry.model(model)));
  for (const auto& quantizer : quantizers) {
    std::unique_ptr<Quantizer> made;
    std::string unusable;
    try {
      const nlohmann::json defaults = nlohmann::json::object();
      made = registry.quantizer(quantizer)(JsonReader(defaults, "(default options)"));
    } catch (const std::exception& e) {
      unusable = "cannot be made with default options: " + exception_message(e);
    }
    for (size_t m = 0; m < models.size(); ++m) {
      cells.push_back(SupportCell{models[m], quantizer,
                                  made ? made->model_incompatibility(structures[m]) : unusable});
    }
  }
  std::stable_sort(cells.begin(), cells.end(),
                   [](const SupportCell& a, const SupportCell& b) { return a.model < b.model; });
  return cells;
}

std::string render_support_table(const std::vector<SupportCell>& cells) {
  std::vector<std::string> models, quantizers;
  std::map<std::pair<std::string, std::string>, std::string> marks;
  std::vector<std::string> notes;  // "quantizer: refusal", numbered by first appearance
  size_t model_width = 5;
  for (const auto& cell : cells) {
    if (std::find(models.begin(), models.end(), cell.model) == models.end()) {
      models.push_back(cell.model);
      model_width = std::max(model_width, cell.model.size());
    }
    if (std::find(quantizers.begin(), quantizers.end(), cell.quantizer) == quantizers.end()) {
      quantizers.push_back(cell.quantizer);
    }
    std::string mark = "yes";
    if (!cell.refusal.empty()) {
      const auto note = cell.quantizer + ": " + cell.refusal;
      auto found = std::find(notes.begin(), notes.end(), note);
      if (found == notes.end()) found = notes.insert(notes.end(), note);
      mark = fmt::format("no {}", found - notes.begin() + 1);
    }
    marks[{cell.model, cell.quantizer}] = mark;
  }
  const auto row = [&](const std::string& first, auto&& column) {
    auto line = fmt::format("{:<{}}", first, model_width);
    for (const auto& quantizer : quantizers) {
      line += fmt::format("  {:<{}}", column(quantizer), std::max<size_t>(6, quantizer.size()));
    }
    line.erase(line.find_last_not_of(' ') + 1);
    return line + "\n";
  };
  std::string out = row("model", [](const std::string& quantizer) { return quantizer; });
  for (const auto& model : models) {
    out += row(model, [&](const std::string& quantizer) { return marks[{model, quantizer}]; });
  }
  for (size_t i = 0; i < notes.size(); ++i) out += fmt::format("{}. {}\n", i + 1, notes[i]);
  return out;
}

}  // namespace lowbit
