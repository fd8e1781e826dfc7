#include <lowbit/experiment/experiment.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/util/hash.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>

namespace lowbit {
namespace {

constexpr int64_t kMaxEpochs = 100000;
constexpr int64_t kMaxBatch = 1 << 20;
constexpr size_t kMaxLabelLength = 64;

std::string read_name(const JsonReader& reader, const std::string& key) {
  auto name = reader.string(key);
  if (!is_safe_name(name))
    reader.fail(key, fmt::format("bad name {}", excerpt(name)), kSafeNameRule);
  return name;
}

/// A column label is free text in tables and pages (escaped there) but one line of it.
std::string read_label(const JsonReader& reader, const std::string& key) {
  auto label = reader.string(key, "");
  if (has_control_characters(label) || label.size() > kMaxLabelLength) {
    reader.fail(key, fmt::format("bad label {}", excerpt(label)),
                "up to 64 characters without control characters (no line breaks or tabs)");
  }
  return label;
}

/// Reads a list field as an array (a single value is a one-element list).
nlohmann::json as_list(const JsonReader& reader, const std::string& key) {
  const auto& value = reader.member(key);
  if (value.is_array()) {
    if (value.empty()) reader.fail(key, "the list is empty");
    return value;
  }
  return nlohmann::json::array({value});
}

std::string item_pointer(const JsonReader& reader, const std::string& key, size_t index) {
  return reader.pointer_to(key) + "/" + std::to_string(index);
}

/// A component given as "name" or {"name": ..., "options": {...}}; validated against the registry.
ComponentChoice read_component(const nlohmann::json& item, const std::string& file,
                               const std::string& pointer, ComponentKind kind,
                               const Registry& registry) {
  ComponentChoice choice;
  std::string name_pointer = pointer;
  if (item.is_string()) {
    choice.name = item.get<std::string>();
  } else if (item.is_object()) {
    JsonReader reader(item, file, pointer);
    choice.name = reader.string("name");
    if (kind == ComponentKind::strategy) choice.label = read_label(reader, "label");
    if (kind != ComponentKind::strategy && reader.has("precisions")) {
      choice.precisions = as_list(reader, "precisions");
    }
    if (reader.has("options")) {
      choice.options = reader.member("options");
      if (!choice.options.is_object()) {
        reader.fail("options", "expected an object of options");
      }
      // The zoo's factories take no options; accepting some would silently train another model.
      if (kind == ComponentKind::model && !choice.options.empty()) {
        reader.fail("options", "the zoo's models take no options", "none, or {}");
      }
    }
    reader.reject_unknown_keys();
    name_pointer = reader.pointer_to("name");
  } else {
    throw ConfigError(file, pointer,
                      fmt::format("expected a {} name or {{\"name\", \"options\", "
                                  "\"precisions\"}}, found {}",
                                  to_string(kind), excerpt(item)));
  }
  if (!registry.contains(kind, choice.name)) {
    auto names = registry.names(kind);
    throw ConfigError(
        file, name_pointer, fmt::format("unknown {} {}", to_string(kind), excerpt(choice.name)),
        names.empty() ? "none registered (is the plugin folder right?)" : join(names));
  }
  return choice;
}

/// Runs the component's factory once so that bad options fail now, not mid-sweep; a strategy's
/// other models (a KD teacher) must be in the zoo.
void validate_options(const ComponentChoice& choice, const std::string& file,
                      const std::string& pointer, ComponentKind kind, const Registry& registry) {
  JsonReader options(choice.options, file, pointer + "/options");
  std::vector<std::string> models_needed;
  try {
    if (kind == ComponentKind::quantizer) {
      registry.quantizer(choice.name)(options);
    } else {
      models_needed = registry.strategy(choice.name)(options)->models_needed();
    }
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError(file, pointer + "/options", e.what());
  }
  options.reject_unknown_keys();
  for (const auto& model : models_needed) {
    if (!registry.contains(ComponentKind::model, model)) {
      throw ConfigError(file, pointer + "/options",
                        fmt::format("{} needs the model {}, which the zoo does not have",
                                    choice.name, excerpt(model)),
                        join(registry.names(ComponentKind::model)));
    }
  }
}

}  // namespace

const char* const kSafeNameRule =
    "1 to 100 of A-Z a-z 0-9 . _ -, starting with a letter or digit (e.g. \"table2_sp\")";

bool has_control_characters(const std::string& text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

bool is_safe_name(const std::string& name) {
  static const std::regex pattern("^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$");
  return std::regex_match(name, pattern);
}

std::pair<int, int> parse_precision(const nlohmann::json& item, const std::string& file,
                                    const std::string& pointer) {
  // At most two digits each: every allowed width fits, and no number can overflow stoi.
  static const std::regex pattern("^([0-9]{1,2})W([0-9]{1,2})A$");
  const std::string allowed = "\"<w>W<a>A\" with bit-widths 1..32, e.g. \"2W2A\", \"32W32A\"";
  std::smatch match;
  const std::string text = item.is_string() ? item.get<std::string>() : "";
  if (!item.is_string() || !std::regex_match(text, match, pattern)) {
    throw ConfigError(file, pointer, fmt::format("bad precision {}", excerpt(item)), allowed);
  }
  int weight_bits = std::stoi(match[1]);
  int activation_bits = std::stoi(match[2]);
  if (weight_bits < 1 || weight_bits > 32 || activation_bits < 1 || activation_bits > 32) {
    throw ConfigError(file, pointer, fmt::format("bit-width out of range in \"{}\"", text),
                      allowed);
  }
  return {weight_bits, activation_bits};
}

namespace {

/// One row of the matrix's precisions: "2W2A", or "2W2A*" with the first and last layers too.
struct PrecisionRow {
  std::pair<int, int> bits;
  bool starred = false;
  bool operator==(const PrecisionRow& other) const {
    return bits == other.bits && starred == other.starred;
  }
};

// "2W2A*" is the paper's starred row: that precision with the first and last layers quantized
// too, beside the plain 2W2A row in one matrix (Table 11's ResNet-50 and ResNet-50*).
std::vector<PrecisionRow> read_precision_rows(const nlohmann::json& list, const std::string& file,
                                              const std::string& pointer) {
  std::vector<PrecisionRow> rows;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto item_pointer = pointer + "/" + std::to_string(i);
    auto item = list[i];
    const bool starred = item.is_string() && !item.get<std::string>().empty() &&
                         item.get<std::string>().back() == '*';
    if (starred) item = item.get<std::string>().substr(0, item.get<std::string>().size() - 1);
    PrecisionRow row{parse_precision(item, file, item_pointer), starred};
    if (starred && row.bits.first == kFullPrecisionBits && row.bits.second == kFullPrecisionBits) {
      throw ConfigError(file, item_pointer,
                        "32W32A* quantizes nothing: every layer is full precision",
                        "\"*\" after a quantized precision, e.g. \"2W2A*\"");
    }
    if (std::find(rows.begin(), rows.end(), row) != rows.end()) {
      throw ConfigError(file, item_pointer, fmt::format("{} is listed twice", excerpt(list[i])),
                        "each precision once");
    }
    rows.push_back(row);
  }
  return rows;
}

/// A model's or quantizer's own "precisions" (none when it has none).
std::vector<PrecisionRow> entry_precisions(const ComponentChoice& entry, const std::string& file,
                                           const std::string& pointer) {
  if (entry.precisions.is_null()) return {};
  return read_precision_rows(entry.precisions, file, pointer + "/precisions");
}

/// The rows of one model x quantizer: the model's own, else the quantizer's own, else the
/// experiment's; with both its own, the model's rows that the quantizer lists too.
std::vector<PrecisionRow> point_rows(const std::vector<PrecisionRow>& experiment_rows,
                                     const std::vector<PrecisionRow>& model_rows,
                                     const std::vector<PrecisionRow>& quantizer_rows) {
  if (model_rows.empty()) return quantizer_rows.empty() ? experiment_rows : quantizer_rows;
  if (quantizer_rows.empty()) return model_rows;
  std::vector<PrecisionRow> rows;
  for (const auto& row : model_rows) {
    if (std::find(quantizer_rows.begin(), quantizer_rows.end(), row) != quantizer_rows.end())
      rows.push_back(row);
  }
  return rows;
}

DataOptions read_data(const JsonReader& reader, TrainingOptions& training) {
  DataOptions data;
  data.name = reader.choice("name", data.name,
                            {"fashion-mnist", "synthetic", "cifar10", "cifar100", "imagefolder"});
  data.limit = reader.integer("limit", 0, 0, int64_t{1} << 40);
  data.test_limit = reader.integer("test_limit", 0, 0, int64_t{1} << 40);
  data.pad = reader.integer("pad", 0, 0, 64);
  if (data.pad != 0 && data.name == "imagefolder") {
    reader.fail("pad", "imagefolder images are resized and cropped as they stream", "0");
  }
  // Three values per channel (R, G, B), each in [min, max].
  auto channel_values = [&reader](const std::string& key, std::vector<double> fallback, double min,
                                  double max) {
    if (!reader.has(key)) return fallback;
    const auto& value = reader.member(key);
    const std::string allowed = fmt::format("an array of 3 numbers in [{}, {}]", min, max);
    if (!value.is_array() || value.size() != 3)
      reader.fail(key, "bad value " + excerpt(value), allowed);
    std::vector<double> out;
    for (const auto& item : value) {
      if (!item.is_number() || item.get<double>() < min || item.get<double>() > max) {
        reader.fail(key, "bad value " + excerpt(value), allowed);
      }
      out.push_back(item.get<double>());
    }
    return out;
  };
  if (data.name == "fashion-mnist") {
    data.root = reader.string("root", data.root);
  } else if (data.name == "cifar10") {
    data.root = reader.string("root");
  } else if (data.name == "cifar100") {
    data.root = reader.string("root");
    data.cifar100_labels = reader.choice("labels", data.cifar100_labels, {"fine", "coarse"});
  } else if (data.name == "imagefolder") {
    data.root = reader.string("root");
    data.resize = reader.integer("resize", data.resize, 1, 4096);
    data.crop = reader.integer("crop", data.crop, 1, 4096);
    if (data.crop > data.resize) reader.fail("crop", "crop is larger than resize", "1..resize");
    data.mean = channel_values("mean", data.mean, -1e3, 1e3);
    data.std = channel_values("std", data.std, 1e-6, 1e3);
  } else {
    data.synthetic_train = reader.integer("train", data.synthetic_train, 1, 1 << 24);
    data.synthetic_test = reader.integer("test", data.synthetic_test, 1, 1 << 24);
    data.synthetic_classes = reader.integer("classes", data.synthetic_classes, 2, 1000);
    data.synthetic_channels = reader.integer("channels", data.synthetic_channels, 1, 16);
    data.synthetic_image_size = reader.integer("image_size", data.synthetic_image_size, 4, 512);
    data.synthetic_seed = static_cast<uint64_t>(reader.integer("seed", 7, 0, int64_t{1} << 62));
  }
  auto augment = reader.object("augment");
  training.augment.crop_padding = augment.integer("crop_padding", 0, 0, 64);
  training.augment.horizontal_flip = augment.boolean("horizontal_flip", false);
  augment.reject_unknown_keys();
  reader.reject_unknown_keys();
  return data;
}

void read_training(const JsonReader& reader, TrainingOptions& training) {
  training.epochs = reader.integer("epochs", training.epochs, 1, kMaxEpochs);
  training.batch_size = reader.integer("batch_size", training.batch_size, 1, kMaxBatch);
  training.eval_batch_size =
      reader.integer("eval_batch_size", training.eval_batch_size, 1, kMaxBatch);
  training.curve_test_images = reader.integer("curve_test_images", 0, 0, int64_t{1} << 30);
  training.max_steps_per_epoch = reader.integer("max_steps_per_epoch", 0, 0, int64_t{1} << 40);
  training.performance.channels_last = reader.boolean("channels_last", false);
  training.performance.mixed_precision =
      reader.mapped_choice("mixed_precision", MixedPrecision::off, mixed_precision_names());
  training.performance.cudnn_benchmark = reader.boolean("cudnn_benchmark", false);

  auto optimizer = reader.object("optimizer");
  optimizer.choice("name", "sgd", {"sgd"});
  auto& sgd = training.optimizer;
  sgd.learning_rate = optimizer.number("lr", sgd.learning_rate, 0.0, 100.0);
  sgd.momentum = optimizer.number("momentum", sgd.momentum, 0.0, 1.0);
  sgd.nesterov = optimizer.boolean("nesterov", sgd.nesterov);
  sgd.weight_decay = optimizer.number("weight_decay", sgd.weight_decay, 0.0, 1.0);
  if (sgd.nesterov && sgd.momentum == 0.0) {
    optimizer.fail("nesterov", "Nesterov momentum needs \"momentum\" > 0",
                   "false, or momentum > 0");
  }
  optimizer.reject_unknown_keys();

  auto schedule = reader.object("schedule");
  training.schedule.kind = schedule.mapped_choice("name", ScheduleKind::cosine, schedule_kinds());
  if (training.schedule.kind == ScheduleKind::multistep) {
    training.schedule.milestones = schedule.integers("milestones", {}, 1, kMaxEpochs);
    training.schedule.gamma = schedule.number("gamma", 0.1, 0.0, 1.0);
    for (size_t i = 1; i < training.schedule.milestones.size(); ++i) {
      if (training.schedule.milestones[i] <= training.schedule.milestones[i - 1]) {
        schedule.fail("milestones", "milestones must increase", "increasing epoch numbers");
      }
    }
  }
  schedule.reject_unknown_keys();
  reader.reject_unknown_keys();
}

nlohmann::json training_json(const TrainingOptions& training) {
  nlohmann::json schedule{{"name", to_string(training.schedule.kind)}};
  if (training.schedule.kind == ScheduleKind::multistep) {
    schedule["milestones"] = training.schedule.milestones;
    schedule["gamma"] = training.schedule.gamma;
  }
  nlohmann::json out{{"epochs", training.epochs},
                     {"batch_size", training.batch_size},
                     {"max_steps_per_epoch", training.max_steps_per_epoch},
                     {"optimizer",
                      {{"name", "sgd"},
                       {"lr", training.optimizer.learning_rate},
                       {"momentum", training.optimizer.momentum},
                       {"nesterov", training.optimizer.nesterov},
                       {"weight_decay", training.optimizer.weight_decay}}},
                     {"schedule", schedule},
                     {"augment",
                      {{"crop_padding", training.augment.crop_padding},
                       {"horizontal_flip", training.augment.horizontal_flip}}}};
  // Layout and precision change the arithmetic, so they make another run; written only when on,
  // so runs from before these settings existed keep their identity. cudnn_benchmark only picks
  // algorithms and, like the thread count, is no part of it.
  if (training.performance.channels_last) out["channels_last"] = true;
  if (training.performance.mixed_precision != MixedPrecision::off) {
    out["mixed_precision"] = to_string(training.performance.mixed_precision);
  }
  return out;
}

nlohmann::json data_json(const DataOptions& data) {
  nlohmann::json out{{"name", data.name}, {"limit", data.limit}, {"test_limit", data.test_limit}};
  // Written only when on, so runs from before padding existed keep their identity.
  if (data.pad != 0) out["pad"] = data.pad;
  if (data.name == "synthetic") {
    out["train"] = data.synthetic_train;
    out["test"] = data.synthetic_test;
    out["classes"] = data.synthetic_classes;
    out["channels"] = data.synthetic_channels;
    out["image_size"] = data.synthetic_image_size;
    out["seed"] = data.synthetic_seed;
  } else if (data.name == "cifar100") {
    out["labels"] = data.cifar100_labels;
  } else if (data.name == "imagefolder") {
    out["resize"] = data.resize;
    out["crop"] = data.crop;
    out["mean"] = data.mean;
    out["std"] = data.std;
  }
  // The root folder is where the data lives, not what it is: moving it keeps the run's identity.
  return out;
}

nlohmann::json component_json(const ComponentChoice& choice) {
  return {{"name", choice.name}, {"options", choice.options}};
}

bool is_full_precision(std::pair<int, int> precision) {
  return Precision{precision.first, precision.second}.is_full_precision();
}

/// A checkpoint named in the file is found relative to the experiment file's folder (so a file
/// and its weights move together), and must be readable now, not when the first trial starts.
std::string checkpoint_file(const JsonReader& reader, const std::string& key) {
  const auto path = reader.string(key);
  const std::string allowed =
      "a readable state dict file, relative to the experiment file's folder or absolute";
  if (path.empty() || has_control_characters(path)) {
    reader.fail(key, fmt::format("bad file name {}", excerpt(path)), allowed);
  }
  namespace fs = std::filesystem;
  fs::path resolved(path);
  if (resolved.is_relative()) resolved = fs::path(reader.file()).parent_path() / resolved;
  resolved = fs::absolute(resolved).lexically_normal();
  std::error_code error;
  if (!fs::is_regular_file(resolved, error) || !std::ifstream(resolved).good()) {
    reader.fail(key, fmt::format("no readable file {}", excerpt(resolved.string())), allowed);
  }
  return resolved.string();
}

/// "init": "scratch" | "full_precision" | {"checkpoint": "file.pt"}. Absent, it is
/// "full_precision" when the precisions include 32W32A (the paper fine-tunes every quantized row
/// from its full-precision model), otherwise "scratch".
InitOptions read_init(const JsonReader& root, const std::vector<std::pair<int, int>>& precisions) {
  const bool has_full_precision =
      std::any_of(precisions.begin(), precisions.end(), is_full_precision);
  const std::string allowed =
      "\"scratch\", \"full_precision\", {\"full_precision\": {\"epochs\": E, \"lr\": LR}} or "
      "{\"checkpoint\": \"file.pt\"}";
  InitOptions init;
  if (!root.has("init")) {
    init.kind = has_full_precision ? InitKind::full_precision : InitKind::scratch;
    return init;
  }
  const auto& value = root.member("init");
  if (value.is_object() && value.size() == 1 && value.contains("full_precision")) {
    // {"full_precision": {"epochs": 8, "lr": 0.1}}: the pretrained rows' own training.
    JsonReader reader(value, root.file(), root.pointer_to("init"));
    auto training = reader.object("full_precision");
    if (training.has("epochs"))
      init.full_precision_epochs = training.integer("epochs", 1, kMaxEpochs);
    if (training.has("lr")) init.full_precision_lr = training.number("lr", 0.0, 100.0);
    training.reject_unknown_keys();
    init.kind = InitKind::full_precision;
  } else if (value.is_object()) {
    JsonReader reader(value, root.file(), root.pointer_to("init"));
    init.kind = InitKind::checkpoint;
    init.checkpoint = checkpoint_file(reader, "checkpoint");
    reader.reject_unknown_keys();
    try {
      init.checkpoint_sha1 = sha1_file(init.checkpoint);
    } catch (const std::exception& e) {
      reader.fail("checkpoint", e.what(), allowed);
    }
    return init;
  } else if (value.is_string()) {
    init.kind = root.mapped_choice(
        "init", InitKind::scratch,
        {{"scratch", InitKind::scratch}, {"full_precision", InitKind::full_precision}});
  } else {
    root.fail("init", fmt::format("bad value {}", excerpt(value)), allowed);
  }
  if (init.kind == InitKind::full_precision && !has_full_precision) {
    root.fail("init",
              "\"full_precision\" starts each quantized run from the experiment's own "
              "32W32A run, but /precisions has no 32W32A",
              "add \"32W32A\" to /precisions, or \"scratch\", or {\"checkpoint\": \"file.pt\"}");
  }
  return init;
}

/// Gives every run its init and puts it into the run's identity: the hash of the 32W32A run a
/// quantized run starts from, or the checkpoint's SHA-1 (not its path: moving the file keeps the
/// runs). A scratch run's configuration is left as before "init" existed, so its hash is too.
/// The 32W32A runs some run starts from move to the front, in their order.
void resolve_init(Experiment& experiment, const JsonReader& root) {
  auto& runs = experiment.runs;
  const auto& init = experiment.init;
  if (init.kind == InitKind::full_precision &&
      (init.full_precision_epochs || init.full_precision_lr)) {
    // Before the quantized runs take their sources' hashes.
    for (auto& run : runs) {
      if (!run.strategies.empty() ||
          !is_full_precision({run.precision.weight_bits, run.precision.activation_bits})) {
        continue;
      }
      run.epochs = init.full_precision_epochs.value_or(run.epochs);
      run.learning_rate = init.full_precision_lr.value_or(run.learning_rate);
      run.record.config["training"]["epochs"] = run.epochs;
      run.record.config["training"]["optimizer"]["lr"] = run.learning_rate;
      run.record.hash = sha1_hex(run.record.config.dump());
    }
  }
  for (auto& run : runs) {
    const bool quantized =
        !is_full_precision({run.precision.weight_bits, run.precision.activation_bits});
    if (experiment.init.kind == InitKind::checkpoint) {
      run.init = InitKind::checkpoint;
      run.record.config["init"] = {{"checkpoint_sha1", experiment.init.checkpoint_sha1}};
    } else if (experiment.init.kind == InitKind::full_precision && quantized) {
      const auto source = full_precision_run(runs, run.model, run.quantizer);
      if (!source) {
        root.fail(
            "init",
            fmt::format("run {} {} {} starts from full precision (init \"full_precision\"{}), "
                        "but there is no 32W32A run of {} with {} and no strategies to "
                        "start from",
                        run.model, run.record.method,
                        precision_label(run.precision.weight_bits, run.precision.activation_bits),
                        root.has("init") ? "" : ", the default with 32W32A in /precisions",
                        run.model, run.quantizer.name),
            "[] among /strategies (the 32W32A row), or \"init\": \"scratch\"");
      }
      run.init = InitKind::full_precision;
      runs[*source].is_full_precision_source = true;
      run.record.config["init"] = {{"full_precision", runs[*source].record.hash}};
    } else {
      continue;
    }
    run.record.hash = sha1_hex(run.record.config.dump());
  }
  std::stable_partition(runs.begin(), runs.end(),
                        [](const RunPlan& run) { return run.is_full_precision_source; });
  for (auto& run : runs) {
    if (run.init == InitKind::full_precision) {
      run.full_precision_source = *full_precision_run(runs, run.model, run.quantizer);
    }
  }
}

/// Why the run's quantizer cannot train it: its precision, or a stage one of its strategies plans
/// (PP's 8/4/2 bits), takes bit-widths outside the quantizer's supported_bits(); "" if it can.
std::string unsupported_bits(const RunPlan& run, const Quantizer& quantizer,
                             const Registry& registry, const std::string& file) {
  const auto supported = quantizer.supported_bits();
  const Precision target{run.precision.weight_bits, run.precision.activation_bits};
  if (!supported.contains(target)) {
    return fmt::format("{} takes {} bits, not {}", run.quantizer.name, supported.describe(),
                       target.label());
  }
  TrainingPlan plan{
      {Stage{"main", run.epochs, run.learning_rate, target.weight_bits, target.activation_bits}}};
  for (const auto& strategy : run.strategies) {
    JsonReader options(strategy.options, file, "/strategies");
    registry.strategy(strategy.name)(options)->plan(plan);
    for (const auto& stage : plan.stages) {
      const Precision planned{stage.weight_bits, stage.activation_bits};
      if (!supported.contains(planned)) {
        return fmt::format("{} plans the stage \"{}\" at {}, and {} takes {} bits", strategy.name,
                           stage.name, planned.label(), run.quantizer.name, supported.describe());
      }
    }
  }
  return "";
}

/// Resolves one matrix point: the configuration that defines it (hashed) and its labels.
RunPlan make_run(const Experiment& experiment, const std::string& model,
                 const ComponentChoice& quantizer, std::pair<int, int> precision,
                 const std::vector<ComponentChoice>& strategies, bool quantize_all,
                 const Registry& registry) {
  RunPlan run;
  run.model = model;
  run.epochs = experiment.training.epochs;
  run.learning_rate = experiment.training.optimizer.learning_rate;
  run.quantizer = quantizer;
  run.strategies = strategies;
  run.precision = PrecisionPolicy{precision.first, precision.second, quantize_all};

  nlohmann::json strategy_list = nlohmann::json::array();
  std::string method = quantizer.name;
  for (const auto& strategy : strategies) {
    strategy_list.push_back(component_json(strategy));
    run.record.strategies.push_back(strategy.name);
    // Paper-style labels ("dorefa+TS+PP"): the strategy's registered short name, if it has one.
    const auto& registered = registry.info(ComponentKind::strategy, strategy.name).label;
    const auto& label = !strategy.label.empty() ? strategy.label : registered;
    method += "+" + (label.empty() ? strategy.name : label);
  }
  if (quantize_all) method += "*";

  auto& record = run.record;
  record.model = model;
  record.quantizer = quantizer.name;
  record.weight_bits = precision.first;
  record.activation_bits = precision.second;
  record.method = method;
  record.config = {{"model", model},
                   {"quantizer", component_json(quantizer)},
                   {"weight_bits", precision.first},
                   {"activation_bits", precision.second},
                   {"quantize_all", quantize_all},
                   {"strategies", strategy_list},
                   {"data", data_json(experiment.data)},
                   {"training", training_json(experiment.training)},
                   {"seed", experiment.seed}};
  record.hash = sha1_hex(record.config.dump());
  return run;
}

}  // namespace

std::optional<size_t> full_precision_run(const std::vector<RunPlan>& runs, const std::string& model,
                                         const ComponentChoice& quantizer) {
  for (size_t i = 0; i < runs.size(); ++i) {
    const auto& candidate = runs[i];
    if (candidate.model == model && candidate.quantizer.name == quantizer.name &&
        candidate.quantizer.options == quantizer.options && candidate.strategies.empty() &&
        is_full_precision({candidate.precision.weight_bits, candidate.precision.activation_bits})) {
      return i;
    }
  }
  return std::nullopt;
}

Experiment parse_experiment(const nlohmann::json& spec, const std::string& file,
                            const Registry& registry) {
  Experiment experiment;
  experiment.file = file;
  experiment.spec = spec;
  JsonReader root(spec, file);
  experiment.name = read_name(root, "name");
  experiment.description = root.string("description", "");
  experiment.trials = root.integer("trials", 1, 1, 1000);
  experiment.seed = static_cast<uint64_t>(root.integer("seed", 0, 0, int64_t{1} << 62));
  experiment.device = root.mapped_choice("device", DeviceChoice::automatic, device_choices());
  experiment.threads = root.integer("threads", 0, 0, 1024);
  const bool quantize_all = root.boolean("quantize_all", false);
  read_training(root.object("training"), experiment.training);
  experiment.data = read_data(root.object("data"), experiment.training);

  std::vector<ComponentChoice> models;
  auto model_list = as_list(root, "models");
  for (size_t i = 0; i < model_list.size(); ++i) {
    models.push_back(read_component(model_list[i], file, item_pointer(root, "models", i),
                                    ComponentKind::model, registry));
  }

  std::vector<ComponentChoice> quantizers;
  auto quantizer_list = as_list(root, "quantizers");
  for (size_t i = 0; i < quantizer_list.size(); ++i) {
    auto pointer = item_pointer(root, "quantizers", i);
    auto choice =
        read_component(quantizer_list[i], file, pointer, ComponentKind::quantizer, registry);
    validate_options(choice, file, pointer, ComponentKind::quantizer, registry);
    quantizers.push_back(choice);
  }

  const auto precisions = read_precision_rows(as_list(root, "precisions"), file, "/precisions");

  // Each entry is one combination of strategies; [] (the default) is the plain baseline.
  std::vector<std::vector<ComponentChoice>> strategy_sets{{}};
  if (root.has("strategies")) {
    strategy_sets.clear();
    const auto& sets = root.member("strategies");
    if (!sets.is_array() || sets.empty()) {
      root.fail("strategies", "expected a non-empty list of strategy lists", "e.g. [[], [\"kd\"]]");
    }
    for (size_t i = 0; i < sets.size(); ++i) {
      auto set_pointer = item_pointer(root, "strategies", i);
      const auto set = sets[i].is_array() ? sets[i] : nlohmann::json::array({sets[i]});
      std::vector<ComponentChoice> choices;
      for (size_t j = 0; j < set.size(); ++j) {
        auto pointer = set_pointer + (sets[i].is_array() ? "/" + std::to_string(j) : "");
        auto choice = read_component(set[j], file, pointer, ComponentKind::strategy, registry);
        validate_options(choice, file, pointer, ComponentKind::strategy, registry);
        choices.push_back(choice);
      }
      strategy_sets.push_back(choices);
    }
  }
  // Each entry's own rows, read once; every row any point has decides the default start, so
  // that an entry's own 32W32A row makes full precision the default as the experiment's does.
  std::vector<std::vector<PrecisionRow>> model_rows, quantizer_rows;
  std::vector<std::pair<int, int>> all_bits;
  for (const auto& row : precisions) all_bits.push_back(row.bits);
  for (size_t i = 0; i < models.size(); ++i) {
    model_rows.push_back(entry_precisions(models[i], file, item_pointer(root, "models", i)));
    for (const auto& row : model_rows.back()) all_bits.push_back(row.bits);
  }
  for (size_t i = 0; i < quantizers.size(); ++i) {
    quantizer_rows.push_back(
        entry_precisions(quantizers[i], file, item_pointer(root, "quantizers", i)));
    for (const auto& row : quantizer_rows.back()) all_bits.push_back(row.bits);
  }
  experiment.init = read_init(root, all_bits);
  root.reject_unknown_keys();

  for (size_t m = 0; m < models.size(); ++m) {
    const auto& model = models[m].name;
    const auto structure = describe_model(registry.model(model));
    for (size_t q = 0; q < quantizers.size(); ++q) {
      const auto& quantizer = quantizers[q];
      JsonReader options(quantizer.options, file, "/quantizers");
      const auto instance = registry.quantizer(quantizer.name)(options);
      const auto model_reason = instance->model_incompatibility(structure);
      for (const auto& row : point_rows(precisions, model_rows[m], quantizer_rows[q])) {
        const auto& precision = row.bits;
        for (const auto& strategies : strategy_sets) {
          // The 32W32A row is the pretrained model the quantized rows start from: strategies
          // train the quantized rows, so such a point is not in the matrix. Left out without a
          // "skipped" line, which would repeat for every strategy list of every file.
          if (experiment.init.kind == InitKind::full_precision && is_full_precision(precision) &&
              !strategies.empty()) {
            continue;
          }
          auto run = make_run(experiment, model, quantizer, precision, strategies,
                              quantize_all || row.starred, registry);
          // A point the quantizer cannot run is skipped with its reason rather than failing.
          const auto reason = !model_reason.empty()
                                  ? model_reason
                                  : unsupported_bits(run, *instance, registry, file);
          if (!reason.empty()) {
            experiment.skipped.push_back(
                SkippedRun{model, run.record.method,
                           precision_label(precision.first, precision.second), reason});
            continue;
          }
          experiment.runs.push_back(std::move(run));
        }
      }
    }
  }
  resolve_init(experiment, root);
  return experiment;
}

std::vector<std::string> profile_names(const nlohmann::json& spec) {
  std::vector<std::string> names;
  if (!spec.is_object() || !spec.contains("profiles") || !spec["profiles"].is_object())
    return names;
  for (const auto& entry : spec["profiles"].items()) names.push_back(entry.key());
  return names;
}

nlohmann::json select_profile(const nlohmann::json& spec, const std::string& file,
                              const std::string& profile) {
  if (!spec.is_object() || !spec.contains("profiles")) {
    if (!profile.empty()) {
      throw ConfigError(
          file, "/profiles",
          fmt::format("profile {} asked for, but the file has no \"profiles\"", excerpt(profile)),
          "no --profile for this file");
    }
    return spec;
  }
  const auto& profiles = spec["profiles"];
  if (!profiles.is_object() || profiles.empty()) {
    throw ConfigError(file, "/profiles", "expected an object of named profiles",
                      "e.g. {\"paper\": {...}, \"cpu\": {...}}");
  }
  const auto names = profile_names(spec);
  const auto allowed = fmt::format("{}", fmt::join(names, ", "));
  for (const auto& [name, patch] : profiles.items()) {
    const auto pointer = "/profiles/" + name;
    if (!is_safe_name(name)) {
      throw ConfigError(file, "/profiles", fmt::format("bad profile name {}", excerpt(name)),
                        kSafeNameRule);
    }
    if (!patch.is_object()) {
      throw ConfigError(file, pointer, "expected an object: the fields this scale changes",
                        "a JSON merge patch, e.g. {\"training\": {\"epochs\": 3}}");
    }
    for (const auto* key : {"name", "profiles"}) {
      if (patch.contains(key)) {
        throw ConfigError(file, pointer + "/" + key,
                          "a profile cannot change the experiment's name or profiles",
                          "any other field of the file");
      }
    }
  }
  if (profile.empty()) {
    throw ConfigError(file, "/profiles", "the file has profiles: choose one with --profile",
                      allowed);
  }
  if (!profiles.contains(profile)) {
    throw ConfigError(file, "/profiles", fmt::format("no profile {}", excerpt(profile)), allowed);
  }
  nlohmann::json resolved = spec;
  resolved.erase("profiles");
  resolved.merge_patch(profiles[profile]);
  if (resolved.contains("name") && resolved["name"].is_string()) {
    resolved["name"] = resolved["name"].get<std::string>() + "-" + profile;
  }
  return resolved;
}

Experiment load_experiment(const std::string& path, const Registry& registry,
                           const std::string& profile) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path, "", "cannot open the experiment file");
  const auto resolved = select_profile(parse_json(in, path), path, profile);
  if (profile.empty()) return parse_experiment(resolved, path, registry);
  try {
    auto experiment = parse_experiment(resolved, path, registry);
    experiment.profile = profile;
    return experiment;
  } catch (const ConfigError& e) {
    // The pointer is into the file with the profile applied: say which profile that was.
    throw ConfigError(fmt::format("{} (profile {})", path, profile), e.pointer(), e.problem(),
                      e.allowed());
  }
}

}  // namespace lowbit
