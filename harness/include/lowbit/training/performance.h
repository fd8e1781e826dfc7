#pragma once
// Speed settings of training (the experiment's "training" object): channels-last memory
// layout, bfloat16 mixed precision and cuDNN's algorithm search. They are off by default:
// the first two change the arithmetic (and so belong to a run's identity when on), the third
// makes a GPU run pick its convolution algorithms by timing, which is not reproducible.

#include <lowbit/sdk/network.h>
#include <lowbit/util/names.h>

#include <torch/torch.h>

#include <string>

namespace lowbit {

/// Forward passes under LibTorch's autocast to bfloat16 (CPU and CUDA), or not. bfloat16 keeps
/// float32's exponent range, so no loss scaling is needed; float16 would need a gradient scaler,
/// which LibTorch's C++ API does not have, and is not offered.
enum class MixedPrecision { off, bf16 };
/// "off", "bf16": as experiment files and `lowbit bench --mixed-precision` name them.
const NameTable<MixedPrecision>& mixed_precision_names();
std::string to_string(MixedPrecision mixed_precision);

struct PerformanceOptions {
  /// Parameters of 4-d layers and input batches in NHWC ("channels last") layout.
  bool channels_last = false;
  MixedPrecision mixed_precision = MixedPrecision::off;
  /// cudnn.benchmark: time the convolution algorithms once per shape, keep the fastest.
  bool cudnn_benchmark = false;

  /// Whether forward passes run under bfloat16 autocast.
  bool autocast_bf16() const { return mixed_precision == MixedPrecision::bf16; }
};

/// Converts the module's 4-d parameters and buffers to channels-last layout in place (a module
/// has no memory-format `to` in the C++ API).
void to_channels_last(torch::nn::Module& module);

/// The batch layout the options ask for.
torch::Tensor input_layout(const torch::Tensor& images, const PerformanceOptions& options);

/// Sets process-wide backend flags (cuDNN benchmark) for a run on `device`.
void apply_backend_flags(const PerformanceOptions& options, torch::Device device);

/// Autocast to bfloat16 on `device`'s type for the scope's life when `enabled`; restores what
/// was there before and drops autocast's cast cache on leaving, as torch.autocast does.
class AutocastScope {
 public:
  AutocastScope(torch::Device device, bool enabled);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool enabled_;
  c10::DeviceType device_type_;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

}  // namespace lowbit
