#include "fused_kernels.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#ifdef LOWBIT_WITH_CUDA_KERNELS
#include "fused_kernels_cuda.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

// This file is compiled with -fno-trapping-math (without it GCC will not turn rint() into a
// vector instruction) and -ffp-contract=off (an FMA would round differently from the composite's
// separate multiply and add). Each loop is cloned for AVX2 and SSE4.1 and picked at load time,
// so one binary is vectorised on any x86-64 machine and still runs on the oldest.
#if defined(__x86_64__) && defined(__GNUC__)
#define LOWBIT_VECTOR_CLONES __attribute__((target_clones("avx2", "sse4.1", "default")))
#else
#define LOWBIT_VECTOR_CLONES
#endif

namespace lowbit::dorefa::fused {

// External linkage: GCC's function multi-versioning needs it for the clones' resolver.
namespace cpu_loops {

LOWBIT_VECTOR_CLONES
void activation_forward(const float* x, float* y, int64_t n, float levels) {
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] > 1.f ? 1.f : x[i];
    v = v < 0.f ? 0.f : v;  // a NaN passes both, as through torch::clamp
    y[i] = std::rint(v * levels) / levels;
  }
}

LOWBIT_VECTOR_CLONES
void activation_backward(const float* x, const float* grad, float* out, int64_t n) {
  // A multiply, not a select, so a NaN or infinite gradient outside [0, 1] gives what the
  // composite's grad * mask gives.
  for (int64_t i = 0; i < n; ++i) out[i] = grad[i] * ((x[i] >= 0.f && x[i] <= 1.f) ? 1.f : 0.f);
}

// bfloat16 is the upper half of a float32; these are c10::BFloat16's conversions, written out so
// the loops below stay plain code the compiler vectorises.
inline float from_bfloat16(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof value);
  return value;
}

inline uint16_t to_bfloat16(float value) {
  if (std::isnan(value)) return 0x7FC0;
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  bits += 0x7FFFu + ((bits >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>(bits >> 16);
}

LOWBIT_VECTOR_CLONES
void activation_forward_bf16(const uint16_t* x, uint16_t* y, int64_t n, float levels) {
  for (int64_t i = 0; i < n; ++i) {
    float v = from_bfloat16(x[i]);
    v = v > 1.f ? 1.f : v;
    v = v < 0.f ? 0.f : v;
    const float scaled = from_bfloat16(to_bfloat16(v * levels));
    y[i] = to_bfloat16(std::rint(scaled) / levels);
  }
}

LOWBIT_VECTOR_CLONES
void activation_backward_bf16(const uint16_t* x, const uint16_t* grad, uint16_t* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = from_bfloat16(x[i]);
    out[i] = to_bfloat16(from_bfloat16(grad[i]) * ((v >= 0.f && v <= 1.f) ? 1.f : 0.f));
  }
}

LOWBIT_VECTOR_CLONES
void weight_forward(const float* t, float* y, int64_t n, float max_abs, float levels) {
  for (int64_t i = 0; i < n; ++i) {
    const float unit = t[i] / max_abs * 0.5f + 0.5f;
    y[i] = 2.f * (std::rint(unit * levels) / levels) - 1.f;
  }
}

LOWBIT_VECTOR_CLONES
void weight_backward(const float* t, const float* grad, float* out, int64_t n, float max_abs,
                     float max_share) {
  for (int64_t i = 0; i < n; ++i) {
    const float sign = t[i] > 0.f ? 1.f : (t[i] < 0.f ? -1.f : 0.f);
    const float through_max = std::fabs(t[i]) == max_abs ? sign * max_share : 0.f;
    out[i] = (grad[i] / max_abs + through_max) * (1.f - t[i] * t[i]);
  }
}

}  // namespace cpu_loops

namespace {

// ATen's own grain (at::internal::GRAIN_SIZE): below it a second thread costs more than it saves.
constexpr int64_t kGrain = 32768;

bool dense(const torch::Tensor& tensor) {
  return tensor.is_contiguous() || tensor.is_contiguous(at::MemoryFormat::ChannelsLast);
}

/// `tensor` with the type and exact layout of `like` (whose memory the kernels walk element by
/// element).
torch::Tensor with_layout_of(const torch::Tensor& tensor, const torch::Tensor& like) {
  if (tensor.strides() == like.strides() && tensor.scalar_type() == like.scalar_type()) {
    return tensor;
  }
  auto copy = torch::empty_like(like);
  copy.copy_(tensor);
  return copy;
}

template <typename Loop>
void parallel(int64_t n, const Loop& loop) {
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) { loop(begin, end - begin); });
}

#ifdef LOWBIT_WITH_CUDA_KERNELS
void* current_stream(const torch::Tensor& tensor) {
  return c10::cuda::getCurrentCUDAStream(tensor.device().index()).stream();
}
#endif

}  // namespace

bool has_cuda_kernels() {
#ifdef LOWBIT_WITH_CUDA_KERNELS
  return true;
#else
  return false;
#endif
}

namespace {

bool on_supported_device(const torch::Tensor& tensor) {
  return tensor.device().is_cpu() || (tensor.device().is_cuda() && has_cuda_kernels());
}

/// The raw 16-bit words of a bfloat16 tensor (the kernels do their own conversions).
const uint16_t* bf16_words(const torch::Tensor& tensor) {
  return reinterpret_cast<const uint16_t*>(tensor.data_ptr<at::BFloat16>());
}
uint16_t* bf16_words(torch::Tensor& tensor) {
  return reinterpret_cast<uint16_t*>(tensor.data_ptr<at::BFloat16>());
}

}  // namespace

bool supports_activation(const torch::Tensor& x) {
  const auto type = x.scalar_type();
  return (type == torch::kFloat || type == torch::kBFloat16) && dense(x) && on_supported_device(x);
}

bool supports_weight(const torch::Tensor& w) {
  return w.scalar_type() == torch::kFloat && dense(w) && on_supported_device(w);
}

torch::Tensor activation_forward(const torch::Tensor& x, float levels) {
  TORCH_CHECK(supports_activation(x),
              "dorefa fused activation: needs a dense float32 or bfloat16 tensor");
  auto y = torch::empty_like(x);
  if (x.scalar_type() == torch::kBFloat16) {
    const uint16_t* in = bf16_words(x);
    uint16_t* out = bf16_words(y);
#ifdef LOWBIT_WITH_CUDA_KERNELS
    if (x.is_cuda()) {
      c10::cuda::CUDAGuard guard(x.device());
      cuda::activation_forward_bf16(in, out, x.numel(), levels, current_stream(x));
      return y;
    }
#endif
    parallel(x.numel(), [&](int64_t begin, int64_t count) {
      cpu_loops::activation_forward_bf16(in + begin, out + begin, count, levels);
    });
    return y;
  }
  const float* in = x.data_ptr<float>();
  float* out = y.data_ptr<float>();
#ifdef LOWBIT_WITH_CUDA_KERNELS
  if (x.is_cuda()) {
    c10::cuda::CUDAGuard guard(x.device());
    cuda::activation_forward(in, out, x.numel(), levels, current_stream(x));
    return y;
  }
#endif
  parallel(x.numel(), [&](int64_t begin, int64_t count) {
    cpu_loops::activation_forward(in + begin, out + begin, count, levels);
  });
  return y;
}

torch::Tensor activation_backward(const torch::Tensor& x, const torch::Tensor& grad_output) {
  const auto grad = with_layout_of(grad_output, x);
  auto result = torch::empty_like(x);
  if (x.scalar_type() == torch::kBFloat16) {
    const uint16_t* in = bf16_words(x);
    const uint16_t* g = bf16_words(grad);
    uint16_t* out = bf16_words(result);
#ifdef LOWBIT_WITH_CUDA_KERNELS
    if (x.is_cuda()) {
      c10::cuda::CUDAGuard guard(x.device());
      cuda::activation_backward_bf16(in, g, out, x.numel(), current_stream(x));
      return result;
    }
#endif
    parallel(x.numel(), [&](int64_t begin, int64_t count) {
      cpu_loops::activation_backward_bf16(in + begin, g + begin, out + begin, count);
    });
    return result;
  }
  const float* in = x.data_ptr<float>();
  const float* g = grad.data_ptr<float>();
  float* out = result.data_ptr<float>();
#ifdef LOWBIT_WITH_CUDA_KERNELS
  if (x.is_cuda()) {
    c10::cuda::CUDAGuard guard(x.device());
    cuda::activation_backward(in, g, out, x.numel(), current_stream(x));
    return result;
  }
#endif
  parallel(x.numel(), [&](int64_t begin, int64_t count) {
    cpu_loops::activation_backward(in + begin, g + begin, out + begin, count);
  });
  return result;
}

torch::Tensor weight_forward(const torch::Tensor& t, const torch::Tensor& max_abs, float levels) {
  TORCH_CHECK(supports_weight(t), "dorefa fused weight: needs a dense float32 tensor");
  auto y = torch::empty_like(t);
  const float* in = t.data_ptr<float>();
  float* out = y.data_ptr<float>();
#ifdef LOWBIT_WITH_CUDA_KERNELS
  if (t.is_cuda()) {
    // The scalars stay on the device: reading them here would wait for the GPU every layer.
    c10::cuda::CUDAGuard guard(t.device());
    cuda::weight_forward(in, out, t.numel(), max_abs.data_ptr<float>(), levels, current_stream(t));
    return y;
  }
#endif
  const float max_value = max_abs.item<float>();
  parallel(t.numel(), [&](int64_t begin, int64_t count) {
    cpu_loops::weight_forward(in + begin, out + begin, count, max_value, levels);
  });
  return y;
}

torch::Tensor weight_backward(const torch::Tensor& t, const torch::Tensor& grad_output,
                              const torch::Tensor& max_abs, const torch::Tensor& max_share) {
  const auto grad = with_layout_of(grad_output, t);
  auto result = torch::empty_like(t);
  const float* in = t.data_ptr<float>();
  const float* g = grad.data_ptr<float>();
  float* out = result.data_ptr<float>();
#ifdef LOWBIT_WITH_CUDA_KERNELS
  if (t.is_cuda()) {
    c10::cuda::CUDAGuard guard(t.device());
    cuda::weight_backward(in, g, out, t.numel(), max_abs.data_ptr<float>(),
                          max_share.data_ptr<float>(), current_stream(t));
    return result;
  }
#endif
  const float max_value = max_abs.item<float>();
  const float share = max_share.item<float>();
  parallel(t.numel(), [&](int64_t begin, int64_t count) {
    cpu_loops::weight_backward(in + begin, g + begin, out + begin, count, max_value, share);
  });
  return result;
}

}  // namespace lowbit::dorefa::fused
