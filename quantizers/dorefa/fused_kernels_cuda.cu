// CUDA kernels of fused_kernels_cuda.h: the same float operations, in the same order, as the
// CPU loops in fused_kernels.cpp. Compiled with --fmad=false so that no multiply-add is fused,
// which keeps the rounding of the composite's separate kernels.

#include "fused_kernels_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace lowbit::dorefa::fused::cuda {
namespace {

constexpr int kThreads = 256;

/// Enough blocks to cover n with kThreads each, capped: the kernels stride over the rest.
unsigned int blocks_for(int64_t n) {
  const int64_t needed = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min<int64_t>(needed, 65535)));
}

void check_launch(const char* kernel) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("dorefa CUDA kernel ") + kernel + ": " +
                             cudaGetErrorString(status));
  }
}

__global__ void activation_forward_kernel(const float* x, float* y, int64_t n, float levels) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    float v = x[i] > 1.f ? 1.f : x[i];
    v = v < 0.f ? 0.f : v;
    y[i] = rintf(v * levels) / levels;
  }
}

__global__ void activation_backward_kernel(const float* x, const float* grad, float* out,
                                           int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    out[i] = grad[i] * ((x[i] >= 0.f && x[i] <= 1.f) ? 1.f : 0.f);
  }
}

// c10::BFloat16's conversions, as in the CPU loops.
__device__ float from_bfloat16(uint16_t bits) {
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);
}

__device__ uint16_t to_bfloat16(float value) {
  if (isnan(value)) return 0x7FC0;
  uint32_t bits = __float_as_uint(value);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

__global__ void activation_forward_bf16_kernel(const uint16_t* x, uint16_t* y, int64_t n,
                                               float levels) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    float v = from_bfloat16(x[i]);
    v = v > 1.f ? 1.f : v;
    v = v < 0.f ? 0.f : v;
    const float scaled = from_bfloat16(to_bfloat16(v * levels));
    y[i] = to_bfloat16(rintf(scaled) / levels);
  }
}

__global__ void activation_backward_bf16_kernel(const uint16_t* x, const uint16_t* grad,
                                                uint16_t* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const float v = from_bfloat16(x[i]);
    out[i] = to_bfloat16(from_bfloat16(grad[i]) * ((v >= 0.f && v <= 1.f) ? 1.f : 0.f));
  }
}

__global__ void weight_forward_kernel(const float* t, float* y, int64_t n, const float* max_abs,
                                      float levels) {
  const float max_value = *max_abs;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const float unit = t[i] / max_value * 0.5f + 0.5f;
    y[i] = 2.f * (rintf(unit * levels) / levels) - 1.f;
  }
}

__global__ void weight_backward_kernel(const float* t, const float* grad, float* out, int64_t n,
                                       const float* max_abs, const float* max_share) {
  const float max_value = *max_abs;
  const float share = *max_share;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const float sign = t[i] > 0.f ? 1.f : (t[i] < 0.f ? -1.f : 0.f);
    const float through_max = fabsf(t[i]) == max_value ? sign * share : 0.f;
    out[i] = (grad[i] / max_value + through_max) * (1.f - t[i] * t[i]);
  }
}

cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

}  // namespace

void activation_forward(const float* x, float* y, int64_t n, float levels, void* stream) {
  if (n == 0) return;
  activation_forward_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, y, n, levels);
  check_launch("activation_forward");
}

void activation_backward(const float* x, const float* grad, float* out, int64_t n, void* stream) {
  if (n == 0) return;
  activation_backward_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, grad, out, n);
  check_launch("activation_backward");
}

void activation_forward_bf16(const uint16_t* x, uint16_t* y, int64_t n, float levels,
                             void* stream) {
  if (n == 0) return;
  activation_forward_bf16_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, y, n,
                                                                                    levels);
  check_launch("activation_forward_bf16");
}

void activation_backward_bf16(const uint16_t* x, const uint16_t* grad, uint16_t* out, int64_t n,
                              void* stream) {
  if (n == 0) return;
  activation_backward_bf16_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(x, grad, out,
                                                                                     n);
  check_launch("activation_backward_bf16");
}

void weight_forward(const float* t, float* y, int64_t n, const float* max_abs, float levels,
                    void* stream) {
  if (n == 0) return;
  weight_forward_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(t, y, n, max_abs,
                                                                           levels);
  check_launch("weight_forward");
}

void weight_backward(const float* t, const float* grad, float* out, int64_t n, const float* max_abs,
                     const float* max_share, void* stream) {
  if (n == 0) return;
  weight_backward_kernel<<<blocks_for(n), kThreads, 0, as_stream(stream)>>>(t, grad, out, n,
                                                                            max_abs, max_share);
  check_launch("weight_backward");
}

}  // namespace lowbit::dorefa::fused::cuda
