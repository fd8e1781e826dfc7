#pragma once
// `lowbit export`: a finished trial's network as a plain tensors file for Python.
//
// The file is torch::pickle_save of a dict (string -> tensor or string), which Python reads with
// `torch.load(path)` and LibTorch with torch::pickle_load. Keys:
//   "<param or buffer name>"       every parameter and buffer, as trained (full-precision shadow)
//   "<layer>.weight_quantized"     for each quantized conv/linear: quantizer(weight), as used in
//                                  the forward pass at the trial's final precision
//   "<layer>.weight_codes"         integer codes (uint8 up to 8 bits, int32 above), same shape
//   "<layer>.weight_scale", "<layer>.weight_offset"  float64, scalars or one per output channel
//                                  (shape [C, 1, 1, 1], broadcasting), such that
//                                  weight_quantized = weight_codes * scale + offset
//                                  (to float32 rounding): the grid the layer's quantizer states
//                                  (WeightQuantizerImpl::grid). DoReFa k-bit weights, in [-1, 1]:
//                                  scale = 2 / (2^k - 1), offset = -1, i.e.
//                                  codes = round((w_q + 1) / 2 * (2^k - 1)); 1-bit DoReFa:
//                                  offset -E|w|, scale 2E|w|; Bi-Real: offset -alpha_c, scale
//                                  2 alpha_c per channel. A quantizer that states no grid gets the
//                                  uniform grid spanned by its smallest and largest level
//   "<layer>.weight_bits"          int64 scalar
//   "__format__", "__run__"        strings: this encoding's description, the run's hash and
//                                  configuration (JSON) and the trial index
// A layer at full precision, or whose quantizer states no grid and whose levels are not uniform
// (LQ-Net), is exported without codes (its quantized weight is still there); "__format__" lists
// it, and export_trial returns the list so `lowbit export` says so. Weights off the grid their
// quantizer states are an error.

#include <lowbit/results/store.h>
#include <lowbit/sdk/network.h>
#include <lowbit/sdk/quantizer.h>
#include <lowbit/sdk/registry.h>

#include <torch/torch.h>

#include <string>
#include <vector>

namespace lowbit {

/// Which run to export: a hash prefix, or model + method + precision (+ experiment) that match
/// exactly one run.
struct RunSelector {
  std::string hash_prefix;
  std::string experiment, model, method, precision;
};

/// The one run matching; throws std::invalid_argument listing the candidates otherwise.
StoredRun find_run(ResultStore& store, const RunSelector& selector);

/// Rebuilds the run's network (model, quantizer and its options, precision policy) for `spec`.
std::shared_ptr<NetworkImpl> rebuild_network(const Registry& registry, const StoredRun& run,
                                             const ModelSpec& spec);

/// Integer codes of `quantized` on a uniform grid of 2^bits levels: {codes, scale, offset}.
/// Returns false when the values lie on no such grid.
bool uniform_codes(const torch::Tensor& quantized, int bits, torch::Tensor& codes, double& scale,
                   double& offset);

/// Codes of `quantized` on the grid a quantizer states; false when some value is off it.
bool grid_codes(const torch::Tensor& quantized, const WeightGrid& grid, torch::Tensor& codes);

struct ExportedTensors {
  c10::impl::GenericDict tensors;
  /// Quantized layers exported without integer codes, each with the reason.
  std::vector<std::string> without_codes;
};

/// The dict described above for a network whose weights are loaded; `bits` of the final stage.
ExportedTensors export_tensors(NetworkImpl& network, int weight_bits);

/// Loads the trial's weights, sets the precision of its last epoch, writes the file. Returns the
/// quantized layers written without integer codes, each with the reason.
std::vector<std::string> export_trial(const Registry& registry, ResultStore& store,
                                      const RunSelector& selector, int64_t trial_index,
                                      const std::string& output);

}  // namespace lowbit
