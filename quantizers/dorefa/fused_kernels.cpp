#include "fused_kernels.h"

#include <ATen/Parallel.h>

#include <cmath>

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

/// `tensor` laid out exactly as `like` (whose memory the kernels walk element by element).
torch::Tensor with_layout_of(const torch::Tensor& tensor, const torch::Tensor& like) {
  if (tensor.strides() == like.strides()) return tensor;
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

bool supports(const torch::Tensor& tensor) {
  if (tensor.scalar_type() != torch::kFloat || !dense(tensor)) return false;
  return tensor.device().is_cpu() || (tensor.device().is_cuda() && has_cuda_kernels());
}

torch::Tensor activation_forward(const torch::Tensor& x, float levels) {
  TORCH_CHECK(supports(x), "dorefa fused activation: needs a dense float32 tensor");
  auto y = torch::empty_like(x);
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
  TORCH_CHECK(supports(t), "dorefa fused weight: needs a dense float32 tensor");
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
