#include <lowbit/training/performance.h>

#include <ATen/autocast_mode.h>
#include <torch/version.h>

// LibTorch 2.4 replaced the per-backend autocast calls (set_enabled for CUDA, set_cpu_enabled,
// set_autocast_gpu_dtype, ...) with ones taking the device type; the old ones are deprecated.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define LOWBIT_AUTOCAST_BY_DEVICE_TYPE 1
#else
#define LOWBIT_AUTOCAST_BY_DEVICE_TYPE 0
#endif

namespace lowbit {

const NameTable<MixedPrecision>& mixed_precision_names() {
  static const NameTable<MixedPrecision> names{{"off", MixedPrecision::off},
                                               {"bf16", MixedPrecision::bf16}};
  return names;
}

std::string to_string(MixedPrecision mixed_precision) {
  return name_of(mixed_precision_names(), mixed_precision);
}
namespace {

bool autocast_enabled(c10::DeviceType type) {
#if LOWBIT_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::is_autocast_enabled(type);
#else
  return type == c10::DeviceType::CUDA ? at::autocast::is_enabled()
                                       : at::autocast::is_cpu_enabled();
#endif
}

void set_autocast_enabled(c10::DeviceType type, bool enabled) {
#if LOWBIT_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_enabled(type, enabled);
#else
  if (type == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

at::ScalarType autocast_dtype(c10::DeviceType type) {
#if LOWBIT_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::get_autocast_dtype(type);
#else
  return type == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                       : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set_autocast_dtype(c10::DeviceType type, at::ScalarType dtype) {
#if LOWBIT_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_dtype(type, dtype);
#else
  if (type == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}

}  // namespace

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  // set_data keeps each parameter the same autograd leaf (optimizers and hooks still hold it).
  for (auto& parameter : module.parameters()) {
    if (parameter.dim() == 4)
      parameter.set_data(parameter.contiguous(at::MemoryFormat::ChannelsLast));
  }
  for (auto& buffer : module.buffers()) {
    if (buffer.dim() == 4) buffer.set_data(buffer.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

torch::Tensor input_layout(const torch::Tensor& images, const PerformanceOptions& options) {
  if (!options.channels_last || images.dim() != 4) return images;
  return images.contiguous(at::MemoryFormat::ChannelsLast);
}

void apply_backend_flags(const PerformanceOptions& options, torch::Device device) {
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(options.cudnn_benchmark);
}

AutocastScope::AutocastScope(torch::Device device, bool enabled)
    : enabled_(enabled), device_type_(device.type()) {
  if (!enabled_) return;
  previous_enabled_ = autocast_enabled(device_type_);
  previous_dtype_ = autocast_dtype(device_type_);
  set_autocast_enabled(device_type_, true);
  set_autocast_dtype(device_type_, at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!enabled_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast_enabled(device_type_, previous_enabled_);
  set_autocast_dtype(device_type_, previous_dtype_);
}

}  // namespace lowbit
