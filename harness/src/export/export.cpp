#include <lowbit/export/export.h>
#include <lowbit/results/layout.h>
#include <lowbit/util/atomic_file.h>

#include <lowbit/experiment/experiment.h>
#include <lowbit/layers/quantized_layers.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/training/trainer.h>
#include <lowbit/training/weights.h>

#include <fmt/format.h>

#include <stdexcept>

namespace lowbit {
namespace {

std::string describe(const StoredRun& run) {
  return fmt::format("{} ({} {} {} {})", run.record.hash.substr(0, 12), run.experiment,
                     run.record.model, run.record.method,
                     precision_label(run.record.weight_bits, run.record.activation_bits));
}

bool matches(const StoredRun& run, const RunSelector& selector) {
  const auto& r = run.record;
  if (!selector.hash_prefix.empty()) return r.hash.rfind(selector.hash_prefix, 0) == 0;
  return (selector.experiment.empty() || run.experiment == selector.experiment) &&
         (selector.model.empty() || r.model == selector.model) &&
         (selector.method.empty() || r.method == selector.method) &&
         (selector.precision.empty() ||
          precision_label(r.weight_bits, r.activation_bits) == selector.precision);
}

constexpr const char* kFormat =
    "lowbit export v1: every parameter and buffer by name; for each quantized conv/linear "
    "<layer>: <layer>.weight_quantized (what the forward pass uses), <layer>.weight_codes "
    "(integers), <layer>.weight_scale and <layer>.weight_offset (float64, scalars or one per "
    "output channel, broadcasting) with weight_quantized = weight_codes * weight_scale + "
    "weight_offset, <layer>.weight_bits. DoReFa k-bit weights: scale 2/(2^k-1), offset -1.";

/// A quantized conv's or linear layer's weight and the quantizer it passes through; null for
/// any other module.
std::pair<WeightQuantizerImpl*, torch::Tensor> quantized_layer(torch::nn::Module& module) {
  if (auto* conv = dynamic_cast<QuantConv2dImpl*>(&module)) {
    return {&conv->weight_quantizer(), conv->weight};
  }
  if (auto* linear = dynamic_cast<QuantLinearImpl*>(&module)) {
    return {&linear->weight_quantizer(), linear->weight};
  }
  return {nullptr, {}};
}

}  // namespace

bool grid_codes(const torch::Tensor& quantized, const WeightGrid& grid, torch::Tensor& codes) {
  const auto values = quantized.detach().to(torch::kCPU, torch::kDouble);
  const auto scale = grid.scale.detach().to(torch::kCPU, torch::kDouble);
  const auto offset = grid.offset.detach().to(torch::kCPU, torch::kDouble);
  if (!scale.gt(0).all().item<bool>()) return false;
  const auto found = values.sub(offset).div(scale).round();
  if (found.min().item<double>() < 0 || found.max().item<double>() > grid.levels - 1) return false;
  // To float32 rounding of the largest level.
  const auto tolerance = 1e-5 * std::max(1.0, values.abs().max().item<double>());
  if (!found.mul(scale).add(offset).sub(values).abs().le(tolerance).all().item<bool>())
    return false;
  codes = found.to(grid.levels <= 256 ? torch::kUInt8 : torch::kInt32);
  return true;
}

StoredRun find_run(ResultStore& store, const RunSelector& selector) {
  if (selector.hash_prefix.empty() && selector.model.empty() && selector.method.empty() &&
      selector.precision.empty() && selector.experiment.empty()) {
    throw std::invalid_argument(
        "choose a run: --run <hash prefix>, or --model/--method/--precision");
  }
  std::vector<StoredRun> found;
  std::string all;
  for (auto& run : store.runs()) {
    all += "\n  " + describe(run);
    if (matches(run, selector)) found.push_back(std::move(run));
  }
  if (found.size() == 1) return found.front();
  if (found.empty()) {
    throw std::invalid_argument(fmt::format("{}: no run matches; stored runs:{}", store.path(),
                                            all.empty() ? " none" : all));
  }
  std::string candidates;
  for (const auto& run : found) candidates += "\n  " + describe(run);
  throw std::invalid_argument(
      fmt::format("{}: {} runs match; narrow the choice (e.g. --run <hash prefix>):{}",
                  store.path(), found.size(), candidates));
}

std::shared_ptr<NetworkImpl> rebuild_network(const Registry& registry, const StoredRun& run,
                                             const ModelSpec& spec) {
  const auto& config = run.record.config;
  const auto quantizer_name = config.at("quantizer").at("name").get<std::string>();
  const nlohmann::json quantizer_options = config.at("quantizer").at("options");
  JsonReader reader(quantizer_options, "run " + run.record.hash, "/quantizer/options");
  std::shared_ptr<const Quantizer> quantizer = registry.quantizer(quantizer_name)(reader);
  PrecisionPolicy policy{config.at("weight_bits").get<int>(),
                         config.at("activation_bits").get<int>(),
                         config.at("quantize_all").get<bool>()};
  // Through the quantizer's structural transform, as the run was trained (Bi-Real, Group-Net).
  return build_network(registry.model(config.at("model").get<std::string>()), spec, quantizer,
                       policy);
}

bool uniform_codes(const torch::Tensor& quantized, int bits, torch::Tensor& codes, double& scale,
                   double& offset) {
  const auto values = quantized.detach().to(torch::kCPU, torch::kDouble);
  const double levels = std::pow(2.0, std::min(bits, 30)) - 1;
  const double low = values.min().item<double>();
  const double high = values.max().item<double>();
  const double tolerance = 1e-5 * std::max(1.0, std::max(std::abs(low), std::abs(high)));
  auto fits = [&](double s, double o) {
    if (s <= 0) return false;
    auto c = values.sub(o).div(s).round();
    if (c.min().item<double>() < 0 || c.max().item<double>() > levels) return false;
    if (!c.mul(s).add(o).sub(values).abs().le(tolerance).all().item<bool>()) return false;
    codes = c.to(bits <= 8 ? torch::kUInt8 : torch::kInt32);
    scale = s;
    offset = o;
    return true;
  };
  // DoReFa's grid on [-1, 1] first (so codes mean the same whichever levels a layer uses), then
  // the grid spanned by the layer's own extremes.
  if (low >= -1 - tolerance && high <= 1 + tolerance && fits(2.0 / levels, -1.0)) return true;
  if (high - low <= tolerance) return fits(1.0, low);
  return fits((high - low) / levels, low);
}

ExportedTensors export_tensors(NetworkImpl& network, int weight_bits) {
  ExportedTensors exported{c10::impl::GenericDict(c10::StringType::get(), c10::AnyType::get()), {}};
  auto& dict = exported.tensors;
  torch::NoGradGuard no_grad;
  network.eval();
  for (const auto& item : network.named_parameters())
    dict.insert(item.key(), item.value().detach().cpu());
  for (const auto& item : network.named_buffers())
    dict.insert(item.key(), item.value().detach().cpu());
  for (const auto& item : network.named_modules()) {
    auto [quantizer, weight] = quantized_layer(*item.value());
    if (quantizer == nullptr) continue;
    const auto& name = item.key();
    const auto quantized = quantizer->forward(weight);
    dict.insert(name + ".weight_quantized", quantized.detach().cpu());
    dict.insert(name + ".weight_bits", torch::tensor(static_cast<int64_t>(weight_bits)));
    if (weight_bits >= kFullPrecisionBits) {
      exported.without_codes.push_back(name + " (full precision)");
      continue;
    }
    torch::Tensor codes;
    torch::Tensor scale, offset;
    if (const auto grid = quantizer->grid(weight)) {
      // The quantizer's own word on its grid: weights off it are its bug, not a layer to skip.
      if (!grid_codes(quantized, *grid, codes)) {
        throw std::runtime_error(fmt::format(
            "layer {}: its quantized weights are not on the grid its quantizer states ({} levels)",
            name, grid->levels));
      }
      scale = grid->scale.detach().cpu().to(torch::kDouble);
      offset = grid->offset.detach().cpu().to(torch::kDouble);
    } else {
      double uniform_scale = 0, uniform_offset = 0;
      if (!uniform_codes(quantized, weight_bits, codes, uniform_scale, uniform_offset)) {
        exported.without_codes.push_back(name +
                                         " (its quantizer states no grid, and its levels "
                                         "are not uniform)");
        continue;
      }
      scale = torch::tensor(uniform_scale, torch::kDouble);
      offset = torch::tensor(uniform_offset, torch::kDouble);
    }
    dict.insert(name + ".weight_codes", codes);
    dict.insert(name + ".weight_scale", scale);
    dict.insert(name + ".weight_offset", offset);
  }
  std::string format = kFormat;
  if (!exported.without_codes.empty()) {
    format += " Layers without codes: " + join(exported.without_codes, "; ");
  }
  dict.insert("__format__", format);
  return exported;
}

std::vector<std::string> export_trial(const Registry& registry, ResultStore& store,
                                      const RunSelector& selector, int64_t trial_index,
                                      const std::string& output) {
  const auto run = find_run(store, selector);
  const auto trials = store.trials(run.id);
  const TrialRecord* trial = nullptr;
  for (const auto& t : trials) {
    if (t.trial_index == trial_index) trial = &t;
  }
  if (trial == nullptr || trial->status != TrialStatus::finished || trial->epochs.empty()) {
    throw std::invalid_argument(
        fmt::format("run {}: trial {} has not finished", describe(run), trial_index));
  }
  const auto spec = load_model_spec(model_spec_path(store.path(), run.record.hash));
  auto network = rebuild_network(registry, run, spec);
  load_weights(*network, trial_weights_path(store.path(), run.record.hash, trial_index));
  // The precision the trial ended at (progressive strategies change it over the stages).
  const auto& last = trial->epochs.back();
  apply_stage_precision(*network,
                        Stage{last.stage, 1, 0.0, last.weight_bits, last.activation_bits});

  auto exported = export_tensors(*network, last.weight_bits);
  auto& dict = exported.tensors;
  dict.insert("__run__", nlohmann::json{{"hash", run.record.hash},
                                        {"experiment", run.experiment},
                                        {"trial", trial_index},
                                        {"seed", trial->seed},
                                        {"top1", trial->top1},
                                        {"config", run.record.config}}
                             .dump());
  const auto bytes = torch::pickle_save(c10::IValue(dict));
  write_file_atomically(output,
                        [&bytes](const ByteSink& sink) { sink(bytes.data(), bytes.size()); });
  return exported.without_codes;
}

}  // namespace lowbit
